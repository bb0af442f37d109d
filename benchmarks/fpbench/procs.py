"""Process control: every group we start is killed and reaped on any exit path; loopback-only children."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # benchmarks/
LOOPBACK = "127.0.0.1"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
PR_SET_CHILD_SUBREAPER = 36

GROUPS: set[int] = set()  # process groups we started; all are killed on any exit path
ANOMALIES: list[str] = []
SERVER_PIDS: list[int] = []  # process ids of the target servers' masters (workers are found as children)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loud(msg: str) -> None:
    """A check failed: shout now and keep it for the summary and results file."""
    ANOMALIES.append(msg)
    bar = "!" * 78
    log(f"\n{bar}\n!! WARNING: {msg}\n{bar}")


def kill_group(pgid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup() -> None:
    """Terminate every process group we started (servers, tools), reap, then make sure.

    Group leaders are our children: they must be reaped, or their zombies would keep the
    group "alive" to kill(0) and every cleanup would wait out the full grace period.
    """
    groups = list(GROUPS)
    for pgid in groups:
        kill_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    for pgid in groups:
        while True:
            try:
                os.waitpid(pgid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not group_alive(pgid):
                break
            if time.monotonic() >= deadline:
                kill_group(pgid, signal.SIGKILL)
                try:
                    os.waitpid(pgid, 0)
                except ChildProcessError:
                    pass
                break
            time.sleep(0.05)
        _reap_group_zombies(pgid)
        GROUPS.discard(pgid)


def _reap_group_zombies(pgid: int) -> None:
    """Members orphaned to us (we are a subreaper) would stay zombies until we exit."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def become_subreaper() -> bool:
    """Orphans of the tools come to us instead of init, so their CPU can still be counted.

    A tool's wait4 covers every descendant that was waited for along the way; a process
    whose parent exited first (a Ray raylet's workers, a leaked multiprocessing child) would
    be reaped by init and its CPU lost. As a subreaper, we reap it and add its rusage.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _orphans() -> list[int]:
    """Our children that we did not start ourselves: orphans of a tool, reparented to us."""
    me = os.getpid()
    known = set(SERVER_PIDS) | GROUPS
    return [pid for pid, after in proc_stats() if int(after[1]) == me and pid not in known]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def reap_orphans(grace: float) -> tuple[float, list[str]]:
    """Reap what a finished tool left behind; kill what still runs after `grace` seconds.

    Returns the orphans' CPU seconds (their wait4 rusage, their own reaped children
    included) and "pid name" of each one that outlived the tool by more than `grace`.
    """
    cpu = 0.0
    lingering: dict[int, str] = {}
    deadline = time.monotonic() + grace
    while kids := _orphans():
        for pid in kids:
            try:
                reaped, _status, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if reaped:
                cpu += usage.ru_utime + usage.ru_stime
            elif time.monotonic() >= deadline:
                lingering.setdefault(pid, f"{pid} {_comm(pid)}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.02)
    return cpu, list(lingering.values())


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, fields after the command name) of every process in /proc/PID/stat."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                yield int(entry.name), f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue


def group_alive(pgid: int) -> bool:
    """Does the group still have a live (non-zombie) member?

    kill(0) says yes for zombies too, and members orphaned to init stay zombies until init
    gets round to reaping them (seconds here), so /proc is read instead.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for _pid, after in proc_stats():
        if int(after[2]) == pgid and after[0] != "Z":
            return True
    return False


def on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def child_env() -> dict[str, str]:
    """The environment of every child: no proxy may route loopback traffic elsewhere, and Ray reports nothing."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = f"{LOOPBACK},localhost"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.pop("FETCHPOOL_DEBUG", None)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
