"""Ctrl-C and SIGTERM on `--engine processes` at any moment: 130 or 143, no traceback, nothing left.

A terminal's Ctrl-C reaches the whole job, worker processes too, and a worker spends its
first second starting an interpreter and importing requests; `kill` may come then as
well. Each test runs the CLI in a session of its own, signals it, and lists its process
group the moment it has exited: every process the run started must have been reaped by
then, and its TMPDIR must be empty.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import group, kill_group, spawn_cli, wait_in_group

from conftest import cli_env

WORKER = "spawn_main"  # on the command line of every spawned worker process
TRACKER = "multiprocessing.resource_tracker"
STUCK_START = """
import sys, time
if "--multiprocessing-fork" in sys.argv:  # a spawned worker: it never gets as far as fetchpool
    time.sleep(120)
"""


@pytest.fixture
def temp(tmp_path: Path) -> Path:
    """The run's TMPDIR, checked empty after it."""
    path = tmp_path / "t"
    path.mkdir()
    return path


def env(temp: Path, stuck: bool = False) -> dict[str, str]:
    """The CLI's environment; `stuck`: worker processes hang in their interpreter's start-up."""
    extra = {"TMPDIR": str(temp)}
    if stuck:
        site = temp.parent / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(STUCK_START)
        extra["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return cli_env(**extra)


def on_processes(*args: str) -> tuple[str, ...]:
    return ("--engine", "processes", "--processes", "2", *args)


def slow_file(server, tmp_path: Path) -> str:
    path = tmp_path / "slow.txt"
    path.write_text("".join(server.url(f"/delay/8000?i={i}") + "\n" for i in range(8)))
    return str(path)


def wait_until_loaded(pgid: int, library: str) -> None:
    """Poll until a worker of the group has mapped a shared library whose path has `library`."""
    end = time.monotonic() + 30
    while True:
        for line in group(pgid):
            if WORKER in line:
                try:
                    if library in Path(f"/proc/{line.split()[0]}/maps").read_text():
                        return
                except OSError:
                    pass
        assert time.monotonic() < end, f"no worker loaded {library}"
        time.sleep(0.005)


def finish(proc: subprocess.Popen[bytes], temp: Path, code: int) -> tuple[bytes, bytes]:
    """Wait for the CLI and check what every ending promises; (stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=30)  # waiting for stuck workers would take START_TIMEOUT, a minute
        left = group(proc.pid)
    finally:
        kill_group(proc.pid)  # a failed run must not outlive its test
        proc.wait()
    assert proc.returncode == code, err.decode()
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err and b"leaked" not in err, err.decode()
    assert left == [], f"outlived the run: {left}"  # reaped by it before it exited, not by init later
    assert list(temp.iterdir()) == []
    return out, err


@pytest.mark.parametrize(
    ("sig", "code", "to_group"),
    [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False), (signal.SIGTERM, 143, True)],
    ids=["ctrl-c", "kill", "kill-job"],
)
def test_a_stop_while_workers_start_ends_the_run_without_waiting_for_them(
    server, temp, sig: int, code: int, to_group: bool
) -> None:
    """Workers stuck starting up: the stop neither waits for them nor lets them print anything."""
    proc = spawn_cli(*on_processes(server.url("/ok")), env=env(temp, stuck=True))
    wait_in_group(proc.pid, WORKER, 2)
    if to_group:
        kill_group(proc.pid, sig)  # a terminal's Ctrl-C, or `kill -TERM -PGID`
    else:
        proc.send_signal(sig)
    out, err = finish(proc, temp, code)
    assert out == b"" and b"interrupted" in err


@pytest.mark.parametrize("moment", ["tracker", "importing", "first-record"])
def test_ctrl_c_at_any_moment_of_the_start_is_quiet(server, tmp_path, temp, moment: str) -> None:
    """Ctrl-C (twice at once, as a wrapper forwards it) as the run starts its processes, while
    they import requests, and once they fetch."""
    proc = spawn_cli(
        *on_processes("-c", "4", "-t", "30", server.url("/ok"), slow_file(server, tmp_path)), env=env(temp)
    )
    if moment == "tracker":  # the first process the run starts, just before its workers
        wait_in_group(proc.pid, TRACKER)
    elif moment == "importing":  # a worker is importing requests (urllib3 loads ssl)
        wait_in_group(proc.pid, WORKER, 2)
        wait_until_loaded(proc.pid, "/_ssl.")
    else:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["url"] == server.url("/ok")
    kill_group(proc.pid, signal.SIGINT)
    kill_group(proc.pid, signal.SIGINT)
    finish(proc, temp, 130)


def test_a_second_ctrl_c_leaves_no_process_either(server, tmp_path, temp) -> None:
    """The immediate exit (nobody reads stdout, so the first press cannot finish) stops the workers too."""
    path = tmp_path / "many.txt"
    path.write_text("".join(server.url(f"/bytes/2000?i={i}") + "\n" for i in range(3000)))
    proc = spawn_cli(*on_processes("-c", "4", str(path)), env=env(temp))
    wchan = Path(f"/proc/{proc.pid}/wchan")
    end = time.monotonic() + 30
    while "pipe_write" not in wchan.read_text():  # blocked writing to a full pipe
        assert time.monotonic() < end, "fetchpool never blocked on its stdout pipe"
        time.sleep(0.05)
    kill_group(proc.pid, signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.7)  # a second press counts only half a second after the first
    kill_group(proc.pid, signal.SIGINT)
    finish(proc, temp, 130)


def test_a_finished_run_leaves_no_process(server, temp) -> None:
    proc = spawn_cli(*on_processes(server.url("/ok"), server.url("/ok?b")), env=env(temp))
    out, _ = finish(proc, temp, 0)
    assert len(out.splitlines()) == 2


LIBRARY_RUN = """
import json, os, sys
from pathlib import Path
from fetchpool import Options, fetch

def children():
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                yield (entry / "cmdline").read_bytes().replace(b"\\0", b" ").decode()
        except OSError:
            pass

if __name__ == "__main__":
    for _ in range(2):
        results = list(fetch(sys.argv[1:], Options(engine="processes", processes=2, concurrency=4)))
        assert [r.ok for r in results] == [True] * len(sys.argv[1:]), results
        print(json.dumps(sorted(children())), flush=True)
"""


@pytest.mark.slow
def test_the_library_on_processes_leaves_only_multiprocessing_s_tracker(server, tmp_path) -> None:
    """After each run its workers are gone; the resource tracker, which `multiprocessing` shares
    with everything in the interpreter, stays until the interpreter exits. Nothing warns."""
    script = tmp_path / "lib_run.py"
    script.write_text(LIBRARY_RUN)
    proc = subprocess.run(
        [sys.executable, str(script), server.url("/ok"), server.url("/ok?b")],
        capture_output=True,
        env=cli_env(),
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode()
    after = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(after) == 2 and all(len(kids) == 1 and TRACKER in kids[0] for kids in after), after


# -- before any engine: the command's own start --------------------------------------------------

SLOW_CLICK = """
import os, sys, time

class SlowClick:
    def find_spec(self, name, path=None, target=None):
        if name == "click":  # the command has started importing its modules
            sys.meta_path.remove(self)
            open(os.environ["SLOW_IMPORT_MARK"], "w").close()
            time.sleep(30)
        return None

sys.meta_path.insert(0, SlowClick())
"""


def test_ctrl_c_while_the_command_imports_its_modules_is_quiet(tmp_path) -> None:
    """A Ctrl-C right after Enter: the command is still importing click and the rest."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_CLICK)
    mark = tmp_path / "importing"
    proc = spawn_cli("--version", env=cli_env(PYTHONPATH=str(site), SLOW_IMPORT_MARK=str(mark)))
    end = time.monotonic() + 30
    while not mark.exists():
        assert time.monotonic() < end, "the command never imported click"
        time.sleep(0.01)
    kill_group(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=20)  # the import would take 30 s more
    finally:
        kill_group(proc.pid)
    assert proc.returncode == 130 and out == b"" and err == b"", err.decode()
