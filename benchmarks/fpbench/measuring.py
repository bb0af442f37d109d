"""Measuring one process run: wall, CPU of the whole tool, peak RSS, and what else used the machine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .procs import GROUPS, SERVER_PIDS, child_env, kill_group, proc_stats, reap_orphans
from .terminal import Terminal

ORPHAN_GRACE = 5.0  # seconds a tool's leftover processes get to exit on their own before they are killed


@dataclass
class Measurement:
    """One process run: what os.wait4 says about it."""

    wall: float
    cpu: float
    maxrss_kb: int
    returncode: int
    timed_out: bool
    other_cpu: float = 0.0  # CPU seconds burnt meanwhile by processes that are neither the tool nor the server
    server_cpu: float = 0.0
    lingering: list[str] = field(default_factory=list)  # processes that outlived the tool (then killed)
    processes: int = 0  # distinct processes seen in the tool's group (only when sampled)
    group_rss_kb: int = 0  # largest sum of RSS over the group's processes at one moment (only when sampled)


CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine so far, from /proc/stat (all cores)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def server_cpu_seconds() -> float:
    """User+sys seconds of the server processes (masters and their workers) so far."""
    total = 0
    wanted = set(SERVER_PIDS)
    for pid, after in proc_stats():
        ppid = int(after[1])
        if pid in wanted or ppid in wanted:
            total += int(after[11]) + int(after[12])
    return total / CLK_TCK


def find_gnu_time() -> str | None:
    """GNU time, if installed: the only clean way to get a child's own peak RSS (see measure)."""
    path = shutil.which("time") or ("/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "GNU" in out.stdout + out.stderr else None


GNU_TIME = find_gnu_time()
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class GroupSampler:
    """Samples /proc for the processes of one run (its process group and the leader's descendants).

    wait4 gives the CPU of every process of the run, but only the largest single peak RSS;
    a run on several processes (fetchpool --engine processes) is better described by how
    many processes it had and the largest sum of their RSS at one moment. Processes that
    live shorter than the interval may be missed; that is what sampling costs.
    """

    def __init__(self, pgid: int, skip: int | None, interval: float = 0.25) -> None:
        self.pgid, self.skip, self.interval = pgid, skip, interval
        self.seen: set[tuple[int, str]] = set()
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="group-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid, after in self._members():
                self.seen.add((pid, after[19]))  # (pid, start time): a reused pid is a new process
                total += int(after[21]) * PAGE_KB
            self.peak_kb = max(self.peak_kb, total)
            self._stop.wait(self.interval)

    def _members(self) -> list[tuple[int, list[str]]]:
        """Live processes of the group, and descendants of its leader that left it (setsid)."""
        stats = {pid: after for pid, after in proc_stats() if after[0] != "Z"}
        children: dict[int, list[int]] = {}
        for pid, after in stats.items():
            children.setdefault(int(after[1]), []).append(pid)
        members = {pid for pid, after in stats.items() if int(after[2]) == self.pgid}
        todo = list(members)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in members:
                    members.add(child)
                    todo.append(child)
        return [(pid, stats[pid]) for pid in members if pid != self.skip and pid in stats]

    def stop(self) -> tuple[int, int]:
        """(distinct processes seen, largest summed RSS in kB)."""
        self._stop.set()
        self._thread.join(5)
        return len(self.seen), self.peak_kb


def measure(
    argv: list[str],
    *,
    timeout: float,
    stdin: Path | None = None,
    stdout: Path | None = None,
    stderr: Path | None = None,
    terminal: Terminal | None = None,
    env: dict[str, str] | None = None,
    sample: bool = False,
) -> Measurement:
    """Run argv in its own process group; wall time, CPU (user+sys) and peak RSS via wait4.

    wait4's rusage covers the child and every descendant it waited for (xargs -> curls),
    so CPU is the whole tool's; ru_maxrss is the largest single process, not a sum.
    A timer kills the whole group if the timeout passes.

    Peak RSS pitfall: Linux records the high-water RSS of the *pre-exec* address space into
    the child's ru_maxrss. Python spawns with vfork, so that is this runner's own peak RSS
    (26+ MB, growing as it parses outputs), a floor under every tool's number: `/bin/true`
    would "use" 26 MB. So when GNU time (Debian package `time`) is there, the tool runs under
    it: a ~1 MB C parent forks it, and its `%M` is the tool's real ru_maxrss from wait4.
    Wall and CPU still come from our own wait4 (GNU time's ~1 ms overhead is inside them).

    With `terminal`, the child's stdout and stderr are that pseudo-terminal's slave side
    (stdout/stderr paths are then ignored); the caller calls `terminal.finish()` for the bytes.

    Processes of the tool orphaned on the way (their parent exited first) come to us, the
    subreaper (see procs.become_subreaper): once the tool has exited they are reaped and their
    CPU added, and any still running after ORPHAN_GRACE seconds is killed and listed in
    `lingering`. With `sample`, a GroupSampler counts the group's processes and summed RSS.
    """
    files = []
    rss_file = None
    if GNU_TIME is not None:
        fd, name = tempfile.mkstemp(prefix="fetchpool-bench-rss-")
        os.close(fd)
        rss_file = Path(name)
        argv = [GNU_TIME, "-f", "%M", "-o", str(rss_file), "--", *argv]
    try:
        fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
        # O_APPEND: parallel curls share these descriptors; appends never overwrite each other.
        fout: IO[bytes] | int
        ferr: IO[bytes] | int
        if terminal is not None:
            fout = ferr = terminal.slave
        else:
            fout = open(stdout, "ab") if stdout else subprocess.DEVNULL
            ferr = open(stderr, "ab") if stderr else subprocess.DEVNULL
        files = [f for f in (fin, fout, ferr) if not isinstance(f, int)]
        busy0, server0 = machine_busy_seconds(), server_cpu_seconds()
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=fin,
            stdout=fout,
            stderr=ferr,
            env=env if env is not None else child_env(),
            start_new_session=True,
        )
        GROUPS.add(proc.pid)
        if terminal is not None:
            terminal.close_slave()
        sampler = GroupSampler(proc.pid, proc.pid if GNU_TIME else None) if sample else None
        fired = threading.Event()

        def _expire() -> None:
            fired.set()
            kill_group(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, _expire)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        server = server_cpu_seconds() - server0
        busy = machine_busy_seconds() - busy0
        processes, group_rss = sampler.stop() if sampler is not None else (0, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if fired.is_set():
            kill_group(proc.pid, signal.SIGKILL)  # stragglers (curls under a killed xargs)
        GROUPS.discard(proc.pid)
        orphan_cpu, lingering = reap_orphans(ORPHAN_GRACE)
        maxrss = usage.ru_maxrss
        if rss_file is not None:
            lines = rss_file.read_text().split()
            maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
        cpu = usage.ru_utime + usage.ru_stime + orphan_cpu
        other = max(0.0, busy - cpu - server)
        return Measurement(
            wall, cpu, maxrss, proc.returncode, fired.is_set(), other, server, lingering, processes, group_rss
        )
    finally:
        for f in files:
            f.close()
        if terminal is not None:
            terminal.close_slave()  # Popen failed: the drain must still end
        if rss_file is not None:
            rss_file.unlink(missing_ok=True)


def proc_status_kb(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS of a live process, in kB (empty once it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out
