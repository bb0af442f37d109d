"""What ends a local Ray's processes when the run that started it cannot: its watchdog.

A run's local Ray is known by its folder: its servers' and starting workers' command
lines name it, every one of its processes has a log file in it open, and each inherits
the run's environment, where a variable (MARK) names it too. That finds them wherever
they were re-parented and whatever title they gave themselves (a title may cover the
environment as well: the agents' does). The run kills them so when it leaves its Ray or
exits. It may also end in ways that run none of its code: `kill -9`, or Ray's own fatal
exit when the raylet the driver registers with dies under it (systemd signalling every
process of a service at that moment: the driver holds the GIL there, so no thread of the
run can act, and Ray exits 1 some seconds later). The watchdog, a small process of its own
session, waits for the run's end (its stdin closes) and then does the same: kill what
is found, remove the folder.

Only Ray's programs are killed (under Ray's package folder, or titled `ray::...`): a
library caller's own child, started while the run was on, inherits the mark too. Run as
a script (`python -I -S raywatch.py FOLDER RAY_DIR`), it imports only the standard
library: it starts in milliseconds and needs nothing of fetchpool.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from typing import IO

MARK = "FETCHPOOL_RAY_RUN"  # in the environment of every process of a run's local Ray


def start(folder: str, ray_dir: str) -> subprocess.Popen[bytes] | None:
    """The watchdog of the local Ray whose processes carry `folder` as their mark."""
    if not os.path.isdir("/proc/self"):  # nothing to find its processes by
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), folder, ray_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a signal to the run's job does not reach it
            env={k: v for k, v in os.environ.items() if k != MARK},  # not marked itself
        )
    except OSError:  # no process to spare: the run's own stop still kills what it finds
        return None


def stop(watchdog: subprocess.Popen[bytes] | None) -> None:
    """The run has left its Ray: let the watchdog check and end (a second at most)."""
    if watchdog is None:
        return
    _close(watchdog.stdin)
    try:
        watchdog.wait(timeout=1.0)
    except subprocess.TimeoutExpired:  # it goes on alone, and its parent collects it
        pass


def kill_marked(folder: str, ray_dir: str) -> None:
    """SIGKILL every process of Ray's marked with `folder`, until none is left (a raylet
    that is dying may start one more worker), within a second. Found through /proc only:
    elsewhere Ray's own shutdown stops them."""
    if not os.path.isdir("/proc/self"):
        return
    end = time.monotonic() + 1.0
    while (found := marked(folder, ray_dir)) and time.monotonic() < end:
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # gone already
                pass
        time.sleep(0.02)


def marked(folder: str, ray_dir: str) -> list[int]:
    """The live processes of the local Ray of `folder`, of this user only (others' cannot
    be read); a zombie reads as nothing."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if _of(entry, folder, ray_dir):
                    found.append(int(entry))
            except OSError:  # gone, or not ours
                continue
    return found


def _of(pid: str, folder: str, ray_dir: str) -> bool:
    """Whether `pid` is one of that Ray's: its command line names the folder (a server, a
    worker starting), or it is one of Ray's programs and its environment carries the
    mark or it has a file of the folder open (a worker whose new title may cover its
    environment too, as the agents' does)."""
    with open(f"/proc/{pid}/cmdline", "rb") as file:
        command = file.read()
    if (folder + os.sep).encode() in command:
        return True
    if not (command.startswith(b"ray::") or (ray_dir.rstrip(os.sep) + os.sep).encode() in command):
        return False
    with open(f"/proc/{pid}/environ", "rb") as file:
        if f"{MARK}={folder}".encode() in file.read().split(b"\0"):
            return True
    fds = f"/proc/{pid}/fd"
    return any(_target(os.path.join(fds, fd)).startswith(folder + os.sep) for fd in os.listdir(fds))


def _target(link: str) -> str:
    try:
        return os.readlink(link)
    except OSError:  # closed meanwhile
        return ""


def _close(stream: IO[bytes] | None) -> None:
    try:
        if stream is not None:
            stream.close()
    except OSError:
        pass


def main(folder: str, ray_dir: str) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        while sys.stdin.buffer.read(4096):  # nothing is sent: this ends when the run does
            pass
    except OSError:
        pass
    kill_marked(folder, ray_dir)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
