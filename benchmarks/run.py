"""Rerunnable throughput / CPU / memory / startup benchmark of fetchpool against real local servers.

Why this exists: "is fetchpool fast enough?" only has an answer next to (a) what curl
does on the same URL list and (b) what a competent hand-written requests + thread pool
script does. Every number here comes from real processes talking HTTP/1.1 keep-alive to
nginx on 127.0.0.1, measured the same way (wall clock and user+sys CPU from `os.wait4`,
peak RSS from GNU time's wait4: see `measure` for why), with tools alternated run by run
so drift (thermal, noisy neighbours) hits every tool alike, the CPU used meanwhile by
unrelated processes recorded, and every run's output checked so a fast-but-wrong run
cannot win.

    python benchmarks/run.py            # full: throughput + live + memory + startup -> results.md
    python benchmarks/run.py --quick    # < 1 minute smoke run, 1 run per tool -> results-quick.md
    python benchmarks/run.py --live     # only the live-view overhead scenario (fetchpool on a pty)
    python benchmarks/run.py --memory   # only the streaming-input memory scenario
    python benchmarks/run.py --startup  # only the startup-time scenario
    python benchmarks/run.py --ref REF  # fetchpool as committed at a git ref, pip-installed into its own venv

Only loopback addresses are ever contacted: every URL is built from the local server's
127.0.0.1 address, and proxy variables are stripped from every child's environment.
See benchmarks/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import fcntl
import json
import os
import platform
import pty
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
SLEEP_SECONDS = 0.05
ECHO_MODULE_CANDIDATES = (
    "/usr/lib/nginx/modules/ngx_http_echo_module.so",
    "/usr/share/nginx/modules/ngx_http_echo_module.so",
    "/usr/lib64/nginx/modules/ngx_http_echo_module.so",
)
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
NGINX_HINT = "install it with: apt-get update && apt-get install -y nginx libnginx-mod-http-echo"
ALL_TOOLS = ("fetchpool", "baseline", "curl-parallel", "xargs-curl")
XARGS_BATCH = 50
CURL_PARALLEL_MIN = (7, 66, 0)

# --------------------------------------------------------------------------- housekeeping

_GROUPS: set[int] = set()  # process groups we started; all are killed on any exit path
ANOMALIES: list[str] = []


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loud(msg: str) -> None:
    """A check failed: shout now and keep it for the summary and results file."""
    ANOMALIES.append(msg)
    bar = "!" * 78
    log(f"\n{bar}\n!! WARNING: {msg}\n{bar}")


def _kill_group(pgid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup() -> None:
    """Terminate every process group we started (servers, tools), reap, then make sure.

    Group leaders are our children: they must be reaped, or their zombies would keep the
    group "alive" to kill(0) and every cleanup would wait out the full grace period.
    """
    groups = list(_GROUPS)
    for pgid in groups:
        _kill_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    for pgid in groups:
        while True:
            try:
                os.waitpid(pgid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not _group_alive(pgid):
                break
            if time.monotonic() >= deadline:
                _kill_group(pgid, signal.SIGKILL)
                try:
                    os.waitpid(pgid, 0)
                except ChildProcessError:
                    pass
                break
            time.sleep(0.05)
        _GROUPS.discard(pgid)


def _proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, fields after the command name) of every process in /proc/PID/stat."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                yield int(entry.name), f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue


def _group_alive(pgid: int) -> bool:
    """Does the group still have a live (non-zombie) member?

    kill(0) says yes for zombies too, and members orphaned to init stay zombies until init
    gets round to reaping them (seconds here), so /proc is read instead.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for _pid, after in _proc_stats():
        if int(after[2]) == pgid and after[0] != "Z":
            return True
    return False


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def child_env() -> dict[str, str]:
    """The environment of every child: no proxy may route loopback traffic elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = f"{LOOPBACK},localhost"
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


# --------------------------------------------------------------------------- measuring


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


SERVER_PIDS: list[int] = []  # process ids of the target servers' masters (workers are found as children)
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
    for pid, after in _proc_stats():
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


class Terminal:
    """A pseudo-terminal for a child's stdout and stderr; a thread drains what it draws.

    The child sees a real terminal (isatty, a window size from TIOCGWINSZ), so it draws
    its live view exactly as it would for a person. Our side keeps every byte (the whole
    typescript), so the final screen can be rendered afterwards. The master must be read
    all the time: a full pty buffer would block the child's writes and slow it down.
    """

    def __init__(self, columns: int = 120, rows: int = 40) -> None:
        self.columns, self.rows = columns, rows
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.data = bytearray()
        self._slave_open = True
        self._thread = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every descriptor of the slave side is closed
                return
            if not chunk:
                return
            self.data += chunk

    def close_slave(self) -> None:
        """Once the child has its copy, ours must go, or the drain never sees the end."""
        if self._slave_open:
            self._slave_open = False
            os.close(self.slave)

    def finish(self, timeout: float = 10.0) -> bytes:
        self.close_slave()
        self._thread.join(timeout)  # a straggler still holding the slave: give up after `timeout`
        os.close(self.master)
        self._thread.join(1)
        return bytes(self.data)


def measure(
    argv: list[str],
    *,
    timeout: float,
    stdin: Path | None = None,
    stdout: Path | None = None,
    stderr: Path | None = None,
    terminal: Terminal | None = None,
    env: dict[str, str] | None = None,
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
        _GROUPS.add(proc.pid)
        if terminal is not None:
            terminal.close_slave()
        fired = threading.Event()

        def _expire() -> None:
            fired.set()
            _kill_group(proc.pid, signal.SIGKILL)

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
        proc.returncode = os.waitstatus_to_exitcode(status)
        if fired.is_set():
            _kill_group(proc.pid, signal.SIGKILL)  # stragglers (curls under a killed xargs)
        _GROUPS.discard(proc.pid)
        maxrss = usage.ru_maxrss
        if rss_file is not None:
            lines = rss_file.read_text().split()
            maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
        cpu = usage.ru_utime + usage.ru_stime
        other = max(0.0, busy - cpu - server)
        return Measurement(wall, cpu, maxrss, proc.returncode, fired.is_set(), other, server)
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


# --------------------------------------------------------------------------- local targets


@dataclass
class Targets:
    """Base URLs of the local servers and a description of what serves them."""

    static_base: str
    sleep_base: str
    description: str
    versions: dict[str, str] = field(default_factory=dict)

    def url(self, path: str, i: int) -> str:
        base = self.sleep_base if path == "sleep" else self.static_base
        url = f"{base}/{path}?i={i}"
        assert url.startswith(f"http://{LOOPBACK}:"), url  # never anything but loopback
        return url


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{load_module}
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {host}:{port} backlog=4096;
        root {tmp}/www;
        location = /1k {{ }}
        location = /100k {{ }}
        location = /404 {{ return 404; }}
{sleep_location}
        location / {{ return 404; }}
    }}
}}
"""

SLEEP_LOCATION = """\
        location = /sleep {{
            echo_sleep {seconds};
            echo ok;
        }}"""


class Servers:
    """Starts nginx (or the asyncio fallback) on free loopback ports; stops them on exit."""

    def __init__(self, tmp: Path, mode: str) -> None:
        self.tmp = tmp
        self.mode = mode
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Targets:
        nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
        if self.mode == "nginx" and nginx is None:
            raise SystemExit(f"run.py: --server nginx but nginx is not installed; {NGINX_HINT}")
        if self.mode == "python" or nginx is None:
            if nginx is None:
                loud(f"nginx not found: falling back to the slow asyncio server; {NGINX_HINT}")
            base = self._start_fallback()
            return Targets(base, base, "asyncio fallback server (benchmarks/fallback_server.py)", {})
        echo = next((p for p in ECHO_MODULE_CANDIDATES if os.path.exists(p)), None)
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
        static = self._start_nginx(nginx, echo)
        if echo is None:
            loud(f"nginx echo module not found: /sleep is served by the asyncio fallback; {NGINX_HINT}")
            sleep = self._start_fallback()
            desc = f"{version} (1 worker) for static paths, asyncio fallback for /sleep"
        else:
            sleep = static
            desc = f"{version} (1 worker, echo module for /sleep)"
        return Targets(static, sleep, desc, {"nginx": version})

    def _start_nginx(self, nginx: str, echo: str | None) -> str:
        www = self.tmp / "www"
        www.mkdir(exist_ok=True)
        (www / "1k").write_bytes(b"x" * 1024)
        (www / "100k").write_bytes(b"y" * 100 * 1024)
        os.chmod(self.tmp, 0o755)  # nginx workers drop root to nobody; they must read www
        for d in (www, *(self.tmp / n for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))):
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o755)
        for f in www.iterdir():
            os.chmod(f, 0o644)
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probe and bind: retry
            port = free_port()
            conf = self.tmp / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(
                    tmp=self.tmp,
                    host=LOOPBACK,
                    port=port,
                    load_module=f"load_module {echo};" if echo else "",
                    sleep_location=SLEEP_LOCATION.format(seconds=SLEEP_SECONDS) if echo else "",
                )
            )
            errlog = self.tmp / "nginx-stderr.log"
            with open(errlog, "wb") as err:
                proc = subprocess.Popen(
                    [nginx, "-p", str(self.tmp), "-e", str(self.tmp / "error.log"), "-c", str(conf)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                )
            _GROUPS.add(proc.pid)
            self.procs.append(proc)
            SERVER_PIDS.append(proc.pid)
            if wait_listening(port, proc):
                return f"http://{LOOPBACK}:{port}"
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            last_error = errlog.read_text(errors="replace") + _tail(self.tmp / "error.log")
        raise SystemExit(f"run.py: nginx did not start:\n{last_error}")

    def _start_fallback(self) -> str:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "fallback_server.py"), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=child_env(),
            start_new_session=True,
        )
        _GROUPS.add(proc.pid)
        self.procs.append(proc)
        SERVER_PIDS.append(proc.pid)
        assert proc.stdout is not None
        ready: list[bytes] = []
        reader = threading.Thread(target=lambda: ready.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout=15)
        line = ready[0].decode() if ready else ""
        if not line.startswith("PORT "):
            raise SystemExit("run.py: the asyncio fallback server did not start")
        port = int(line.split()[1])
        if not wait_listening(port, proc):
            raise SystemExit("run.py: the asyncio fallback server is not accepting connections")
        return f"http://{LOOPBACK}:{port}"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def self_check(targets: Targets) -> None:
    """Prove the targets serve what the scenarios assume before timing anything."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(url: str) -> tuple[int, bytes, float]:
        start = time.perf_counter()
        try:
            with opener.open(url, timeout=10) as r:
                return r.status, r.read(), time.perf_counter() - start
        except urllib.error.HTTPError as e:
            return e.code, e.read(), time.perf_counter() - start

    checks = [
        ("1k", lambda s, b, t: s == 200 and len(b) == 1024),
        ("100k", lambda s, b, t: s == 200 and len(b) == 100 * 1024),
        ("404", lambda s, b, t: s == 404),
        ("sleep", lambda s, b, t: s == 200 and b.strip() == b"ok" and t >= SLEEP_SECONDS * 0.9),
    ]
    for path, ok in checks:
        status, body, took = get(targets.url(path, 0))
        if not ok(status, body, took):
            raise SystemExit(f"run.py: self-check of /{path} failed: status {status}, {len(body)} bytes, {took:.3f}s")


# --------------------------------------------------------------------------- tools


def find_fetchpool() -> str:
    """The fetchpool next to this interpreter first (the venv's), then PATH."""
    beside = Path(sys.executable).parent / "fetchpool"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("fetchpool")
    if found:
        return found
    raise SystemExit(
        "run.py: no `fetchpool` executable next to this Python or on PATH.\n"
        "  Activate the venv and install it:  . .venv/bin/activate && pip install -e .\n"
        "  then rerun with that Python:        python benchmarks/run.py"
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()


def fetchpool_from_ref(ref: str, where: Path) -> tuple[str, str, str]:
    """fetchpool exactly as committed at `ref`, pip-installed (not editable) into its own venv.

    Returns (the venv's `fetchpool` console script, a description, the venv's python).
    Why a snapshot: the working tree may be mid-edit (or another commit may be the one to
    compare against); `git archive` gives an immutable copy (read-only use of git).
    Why a regular install in a fresh venv: that is what `pip install .` users run. An
    editable install (or any venv holding one) makes every interpreter start-up import
    setuptools' editable finder from a .pth file (pathlib, fnmatch, re: ~10-20 ms), which
    would be charged to fetchpool's start-up. The dependencies are pinned to the versions
    this runner's venv has, so the snapshot runs on the same requests/urllib3/rich/click.
    """
    try:
        sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", sha], capture_output=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"run.py: cannot read fetchpool at git ref {ref!r}: {exc}") from None
    dest = where / f"fetchpool-{sha[:12]}"
    src = dest / "src"
    src.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True, timeout=60)
    venv = dest / "venv"
    from importlib.metadata import distributions

    pins = sorted(
        {
            f"{d.metadata['Name']}=={d.version}"
            for d in distributions()
            if d.metadata["Name"] and d.metadata["Name"].lower() not in ("fetchpool", "pip", "setuptools")
        }
    )
    constraints = dest / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    python = venv / "bin" / "python"
    log(f"installing fetchpool {sha[:12]} (git archive, non-editable) into {venv} ...")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--timeout", "30"]
        + ["-c", str(constraints), str(src)],
    ]
    for step in steps:
        # The ordinary environment: pip may need the package index (never a benchmark target).
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(
                f"run.py: could not install the snapshot of {ref!r} ({' '.join(step[:4])} ...), exit "
                f"{done.returncode}:\n{done.stderr[-3000:]}"
            )
    script = venv / "bin" / "fetchpool"
    if not script.is_file():
        raise SystemExit(f"run.py: the snapshot install left no console script at {script}")
    direct = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.distribution('fetchpool').read_text('direct_url.json'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    if re.search(r'"editable"\s*:\s*true', direct):
        loud(f"the snapshot of {ref} was installed editable after all: {direct.strip()}")
    return (
        str(script),
        f"git {ref} = {sha[:12]} (git archive snapshot, regular non-editable `pip install` into its own venv)",
        str(python),
    )


def editable_note() -> str:
    """Is the fetchpool this interpreter sees an editable install? Its start-up then pays extra."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        direct = distribution("fetchpool").read_text("direct_url.json") or ""
    except PackageNotFoundError:
        return ""
    if re.search(r'"editable"\s*:\s*true', direct):
        return (
            " — ⚠ an editable install: start-up includes setuptools' editable import finder (~10-20 ms) "
            "that `pip install .` users do not pay; use --ref for a regular install"
        )
    return ""


def working_tree_state() -> str:
    try:
        sha = _git("rev-parse", "--short=12", "HEAD")
        dirty = [line for line in _git("status", "--porcelain", "--", "fetchpool").splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return "working tree (not a git checkout?)"
    return f"working tree at {sha}" + (f" + {len(dirty)} uncommitted change(s) under fetchpool/" if dirty else "")


def curl_version(curl: str) -> tuple[tuple[int, ...], str]:
    first = subprocess.run([curl, "--version"], capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
    m = re.match(r"curl (\d+)\.(\d+)\.(\d+)", first)
    return (tuple(int(x) for x in m.groups()) if m else (0, 0, 0)), first


@dataclass
class Tool:
    """How to run one client on a URL list, and where its per-URL statuses land."""

    name: str
    argv: Callable[[Path, Path, int], list[str]]  # (url file, curl config, K) -> argv
    result_stream: str  # "stdout" or "stderr"
    kind: str  # "json" (fetchpool records) or "codes" (one status per URL)


def make_tools(fetchpool: str, wanted: list[str], python: str) -> tuple[list[Tool], dict[str, str]]:
    """The tools; `python` runs the baseline (the interpreter of fetchpool's own environment)."""
    versions: dict[str, str] = {}
    versions["fetchpool"] = subprocess.run(
        [fetchpool, "--version"], capture_output=True, text=True, timeout=30, env=child_env()
    ).stdout.strip()
    tools: dict[str, Tool] = {
        "fetchpool": Tool("fetchpool", lambda f, c, k: [fetchpool, "-c", str(k), "--json", str(f)], "stdout", "json"),
        "baseline": Tool(
            "baseline",
            lambda f, c, k: [python, str(HERE / "baseline_threadpool.py"), str(f), "-k", str(k)],
            "stdout",
            "codes",
        ),
    }
    curl = shutil.which("curl")
    if curl is None:
        loud("curl not found: the curl columns are skipped (apt-get install curl)")
    else:
        version, line = curl_version(curl)
        versions["curl"] = " ".join(line.split()[:4])  # curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1
        if version >= CURL_PARALLEL_MIN:
            tools["curl-parallel"] = Tool(
                "curl-parallel",
                lambda f, c, k: [
                    curl,
                    "-s",
                    "--parallel",
                    "--parallel-max",
                    str(k),
                    "-w",
                    "%{http_code}\\n",
                    "-K",
                    str(c),
                ],
                "stdout",
                "codes",
            )
        else:
            loud(f"{line.split()[0:2]} has no --parallel (needs >= 7.66): curl-parallel skipped")
        if shutil.which("xargs"):
            # Each curl gets 50 URLs. One `-o /dev/null` covers only the first URL (the other 49
            # bodies would land in stdout among the status codes), so 50 are given, one per URL.
            # With stdout a file, curl buffers its -w lines and writes them in one go at exit,
            # so parallel curls do not interleave them (stderr is unbuffered and does).
            discard = ["-o", "/dev/null"] * XARGS_BATCH
            tools["xargs-curl"] = Tool(
                "xargs-curl",
                lambda f, c, k: [
                    "xargs",
                    "-P",
                    str(k),
                    "-n",
                    str(XARGS_BATCH),
                    curl,
                    "-s",
                    "-w",
                    "%{http_code}\\n",
                    *discard,
                ],
                "stdout",
                "codes",
            )
    found = subprocess.run(
        [python, "-c", "from importlib.metadata import version as v; print(v('requests'), v('urllib3'))"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    if found.returncode != 0:
        raise SystemExit(f"run.py: `requests` is not importable by {python}; run with the venv's python")
    versions["requests"], versions["urllib3"] = found.stdout.split()
    versions["python for baseline and start-up references"] = (
        python if python == sys.executable else f"{python} (the snapshot's own venv, removed after the run)"
    )
    return [tools[name] for name in wanted if name in tools], versions


@dataclass
class Outcome:
    records: int
    statuses: Counter[str]
    details: list[str]


def read_outcome(tool: Tool, path: Path) -> Outcome:
    """Count records and statuses in a tool's output; for fetchpool keep error samples."""
    if tool.kind == "json":
        statuses: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        records = 0
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                records += 1
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    statuses["unparseable"] += 1
                    continue
                statuses[str(rec.get("status") or rec.get("error") or "none")] += 1
                if rec.get("error"):
                    errors[f"{rec['error']}: {str(rec.get('error_message'))[:120]}"] += 1
        return Outcome(records, statuses, [f"{n}x {msg}" for msg, n in errors.most_common(5)])
    text = path.read_text(errors="replace")
    codes = Counter(line.strip() for line in text.splitlines() if line.strip())
    return Outcome(sum(codes.values()), codes, [])


def check(tool: Tool, label: str, expect: int, m: Measurement, out: Outcome, stderr_path: Path | None) -> bool:
    """Every run must produce exactly `expect` records, all 200, exit 0, in time."""
    problems = []
    if m.timed_out:
        problems.append("timed out (killed)")
    if m.returncode != 0:
        problems.append(f"exit code {m.returncode}")
    if out.records != expect:
        problems.append(f"{out.records} records, expected {expect}")
    bad = {k: v for k, v in out.statuses.items() if k != "200"}
    if bad:
        problems.append(f"non-200 statuses {dict(bad)}")
    if not problems:
        return True
    extra = ""
    if out.details:
        extra += "\n   errors: " + "; ".join(out.details)
    if stderr_path is not None and tool.result_stream != "stderr":
        tail = _tail(stderr_path, 5)
        if tail:
            extra += f"\n   stderr: {tail}"
    loud(f"{label} {tool.name}: " + ", ".join(problems) + extra)
    return False


# --------------------------------------------------------------------------- throughput


@dataclass
class Scenario:
    key: str
    label: str
    path: str
    k: int
    urls: int
    latency: float | None = None


@dataclass
class RunRecord:
    scenario: str
    tool: str
    round: int
    urls: int
    wall: float
    cpu: float
    maxrss_kb: int
    returncode: int
    ok: bool
    statuses: dict[str, int]
    server_cpu: float = 0.0
    other_cpu: float = 0.0

    @classmethod
    def of(cls, scenario: str, tool: str, rnd: int, urls: int, m: Measurement, ok: bool, outcome: Outcome) -> RunRecord:
        """One run's row, from its measurement and the records it gave."""
        return cls(
            scenario,
            tool,
            rnd,
            urls,
            m.wall,
            m.cpu,
            m.maxrss_kb,
            m.returncode,
            ok,
            dict(outcome.statuses),
            m.server_cpu,
            m.other_cpu,
        )


def write_url_list(targets: Targets, path_name: str, n: int, where: Path) -> tuple[Path, Path]:
    """URL file (one per line, distinct query strings) and the matching curl -K config."""
    urls = where / f"urls-{path_name}-{n}.txt"
    cfg = where / f"curl-{path_name}-{n}.cfg"
    with open(urls, "w") as fu, open(cfg, "w") as fc:
        for i in range(n):
            url = targets.url(path_name, i)
            fu.write(url + "\n")
            fc.write(f'url = "{url}"\noutput = "/dev/null"\n')
    return urls, cfg


def run_timeout(n: int) -> float:
    return 60 + n / 100


def run_tool(
    tool: Tool, label: str, urls: Path, cfg: Path, k: int, n: int, work: Path
) -> tuple[Measurement, bool, Outcome]:
    out_path = work / f"out-{tool.name}.txt"
    err_path = work / f"err-{tool.name}.txt"
    for p in (out_path, err_path):
        p.unlink(missing_ok=True)
    stdin = urls if tool.name == "xargs-curl" else None
    m = measure(tool.argv(urls, cfg, k), timeout=run_timeout(n), stdin=stdin, stdout=out_path, stderr=err_path)
    outcome = read_outcome(tool, err_path if tool.result_stream == "stderr" else out_path)
    ok = check(tool, label, n, m, outcome, err_path)
    return m, ok, outcome


def run_throughput(
    targets: Targets, tools: list[Tool], scenarios: list[Scenario], runs: int, work: Path
) -> list[RunRecord]:
    """Warm every tool once, then per scenario run A B C D A B C D ... `runs` rounds."""
    records: list[RunRecord] = []
    warm_urls, warm_cfg = write_url_list(targets, "1k", 200, work)
    log("warm-up: every tool once on 200 URLs (not recorded)")
    for tool in tools:
        run_tool(tool, "warm-up", warm_urls, warm_cfg, 16, 200, work)
    for sc in scenarios:
        urls, cfg = write_url_list(targets, sc.path, sc.urls, work)
        for rnd in range(1, runs + 1):
            for tool in tools:
                m, ok, outcome = run_tool(tool, sc.label, urls, cfg, sc.k, sc.urls, work)
                rate = sc.urls / m.wall
                log(
                    f"[{sc.label}] round {rnd}/{runs} {tool.name:13s} {m.wall:7.2f}s {rate:8.0f} URL/s "
                    f"cpu {1000 * m.cpu / sc.urls:6.3f} ms/URL rss {m.maxrss_kb / 1024:6.1f} MB "
                    f"other {100 * m.other_cpu / (m.wall * NCPU):3.0f}% {'ok' if ok else 'FAILED'}"
                )
                records.append(RunRecord.of(sc.key, tool.name, rnd, sc.urls, m, ok, outcome))
    return records


def throughput_table(records: list[RunRecord], scenarios: list[Scenario], tools: list[Tool]) -> str:
    rows = [
        "| scenario | tool | URLs/s (median) | × baseline | × curl | CPU ms/URL | peak RSS MB | % of K/latency limit "
        "| checks | other load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for sc in scenarios:
        med: dict[str, dict[str, float]] = {}
        for tool in tools:
            mine = [r for r in records if r.scenario == sc.key and r.tool == tool.name]
            if not mine:
                continue
            med[tool.name] = {
                "rate": statistics.median(r.urls / r.wall for r in mine),
                "cpu": statistics.median(1000 * r.cpu / r.urls for r in mine),
                "rss": max(r.maxrss_kb for r in mine) / 1024,
                "ok": sum(r.ok for r in mine),
                "n": len(mine),
                "other": statistics.median(100 * r.other_cpu / (r.wall * NCPU) for r in mine),
            }
        base = med.get("baseline", {}).get("rate")
        curl = med.get("curl-parallel", {}).get("rate")
        for name, v in med.items():
            limit = f"{100 * v['rate'] / (sc.k / sc.latency):.0f}%" if sc.latency else "—"
            checks = f"{int(v['ok'])}/{int(v['n'])} ok" if v["ok"] == v["n"] else f"⚠ {int(v['ok'])}/{int(v['n'])} ok"
            rows.append(
                f"| {sc.label} | {name} | {v['rate']:,.0f} | {_ratio(v['rate'], base)} | {_ratio(v['rate'], curl)} "
                f"| {v['cpu']:.3f} | {v['rss']:.1f} | {limit} | {checks} | {v['other']:.0f}% |"
            )
    return "\n".join(rows)


def _ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else "n/a"


# --------------------------------------------------------------------------- live view

LIVE_K = 16
LIVE_COLUMNS, LIVE_ROWS = 120, 40
LIVE_SCREEN_LINES = 45
LIVE_TARGET = 0.95  # the live view may cost at most 5% of the throughput
LIVE_VARIANTS = ("json-to-file", "live-view")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def live_env() -> dict[str, str]:
    """A person's terminal: colours on, size only from the pty (TIOCGWINSZ), not the environment."""
    env = child_env()
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    env["TERM"] = "xterm-256color"
    return env


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def render_screen(data: bytes, columns: int, rows: int, keep: int) -> tuple[str, str]:
    """The last `keep` lines a person would see after the run (screen plus scrollback).

    With pyte (optional: `pip install pyte`), the bytes are played through a terminal
    emulator of the pty's size, so the live view's redraws collapse to what stayed on the
    screen. Without it, escape sequences are stripped and each line keeps what followed its
    last carriage return: readable, but every redrawn frame of the live view remains.
    """
    try:
        import pyte
    except ImportError:
        lines = []
        for line in strip_ansi(data.decode("utf-8", "replace")).split("\n"):
            parts = [part for part in line.split("\r") if part.strip()]
            lines.append(parts[-1].rstrip() if parts else "")
        how = "escape sequences stripped (pyte is not installed; `pip install pyte` renders the real screen)"
    else:
        from importlib.metadata import version as dist_version

        screen = pyte.HistoryScreen(columns, rows, history=max(1000, 4 * keep), ratio=0.5)
        pyte.ByteStream(screen).feed(data)

        def text(line: Any) -> str:
            return "".join(line[x].data for x in range(columns)).rstrip()

        lines = [text(line) for line in screen.history.top] + [text(screen.buffer[y]) for y in range(rows)]
        how = f"rendered by pyte {dist_version('pyte')} as a {columns}×{rows} terminal, scrollback included"
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines[-keep:]), how


def run_live(
    targets: Targets, fetchpool: str, n: int, runs: int, work: Path
) -> tuple[dict[str, Any], bytes, list[RunRecord]]:
    """Throughput with the live terminal view against plain JSON lines into a file.

    json-to-file: `fetchpool -c K --json URLS > FILE` (no terminal anywhere: no view at all).
    live-view:    `fetchpool -c K -o FILE.jsonl URLS` with stdout and stderr a 120x40 pty,
                  so the full live view is drawn while the records still go to FILE.
    Alternated A B A B ..., every run checked (exit 0, one 200 record per URL).
    Returns the summary, the typescript of the last live run, and the per-run records.
    """
    tool = Tool("fetchpool", lambda f, c, k: [], "stdout", "json")
    env = live_env()
    typescript = b""

    def one(variant: str, label: str, urls: Path, count: int) -> tuple[Measurement, bool, Outcome, bytes]:
        if variant == "json-to-file":
            out, err = work / "live-json.out", work / "live-json.err"
            for p in (out, err):
                p.unlink(missing_ok=True)
            argv = [fetchpool, "-c", str(LIVE_K), "--json", str(urls)]
            m = measure(argv, timeout=run_timeout(count), stdout=out, stderr=err)
            data = b""
        else:
            out, err = work / "live-records.jsonl", work / "live-tty.txt"  # .jsonl: JSON lines by -o's name
            for p in (out, err):
                p.unlink(missing_ok=True)
            term = Terminal(LIVE_COLUMNS, LIVE_ROWS)
            argv = [fetchpool, "-c", str(LIVE_K), "-o", str(out), str(urls)]
            m = measure(argv, timeout=run_timeout(count), terminal=term, env=env)
            data = term.finish()
            err.write_text(strip_ansi(data.decode("utf-8", "replace")))
        outcome = read_outcome(tool, out)
        ok = check(tool, f"{label} {variant}", count, m, outcome, err)
        if variant == "live-view" and ok and b"\x1b[" not in data:
            loud(
                f"{label} live-view: the terminal received no escape sequences ({len(data)} bytes): no live view drawn?"
            )
            ok = False
        return m, ok, outcome, data

    warm, _ = write_url_list(targets, "1k", 200, work)
    log("live view: warm-up, each variant once on 200 URLs (not recorded)")
    for variant in LIVE_VARIANTS:
        one(variant, "live warm-up", warm, 200)
    urls, _ = write_url_list(targets, "1k", n, work)
    records: list[RunRecord] = []
    tty_bytes: dict[int, int] = {}
    for rnd in range(1, runs + 1):
        for variant in LIVE_VARIANTS:
            m, ok, outcome, data = one(variant, "live view", urls, n)
            if data:
                typescript = data
                tty_bytes[rnd] = len(data)
            log(
                f"[live view, 1 KiB, K={LIVE_K}] round {rnd}/{runs} {variant:12s} {m.wall:7.2f}s {n / m.wall:8.0f} URL/s "
                f"cpu {1000 * m.cpu / n:6.3f} ms/URL other {100 * m.other_cpu / (m.wall * NCPU):3.0f}% "
                + (f"tty {len(data) / 1024:,.0f} KiB " if data else "")
                + ("ok" if ok else "FAILED")
            )
            records.append(RunRecord.of("live-1k-k16", variant, rnd, n, m, ok, outcome))
    summary: dict[str, Any] = {"urls": n, "k": LIVE_K, "runs": runs, "columns": LIVE_COLUMNS, "rows": LIVE_ROWS}
    for variant in LIVE_VARIANTS:
        mine = [r for r in records if r.tool == variant]
        summary[variant] = {
            "rate": statistics.median(r.urls / r.wall for r in mine),
            "cpu_ms_per_url": statistics.median(1000 * r.cpu / r.urls for r in mine),
            "peak_rss_mb": max(r.maxrss_kb for r in mine) / 1024,
            "other_load_pct": statistics.median(100 * r.other_cpu / (r.wall * NCPU) for r in mine),
            "ok": sum(r.ok for r in mine),
            "n": len(mine),
            "rates": [round(r.urls / r.wall) for r in mine],
        }
    json_runs = {r.round: r for r in records if r.tool == "json-to-file"}
    summary["paired_ratios"] = [
        round((r.urls / r.wall) / (json_runs[r.round].urls / json_runs[r.round].wall), 3)
        for r in records
        if r.tool == "live-view"
    ]
    summary["tty_bytes"] = statistics.median(tty_bytes.values()) if tty_bytes else 0
    json_s, live_s = summary["json-to-file"], summary["live-view"]
    summary["ratio"] = live_s["rate"] / json_s["rate"]
    summary["cpu_ratio"] = live_s["cpu_ms_per_url"] / json_s["cpu_ms_per_url"]
    summary["target_met"] = summary["ratio"] >= LIVE_TARGET
    screen, how = render_screen(typescript, LIVE_COLUMNS, LIVE_ROWS, LIVE_SCREEN_LINES)
    summary["screen"] = screen
    summary["screen_how"] = how
    log(
        f"live view: live ÷ json throughput {summary['ratio']:.3f} (target ≥ {LIVE_TARGET}: "
        f"{'met' if summary['target_met'] else 'MISSED'}), CPU/URL ×{summary['cpu_ratio']:.2f}"
    )
    return summary, typescript, records


def live_section(live: dict[str, Any], typescript_name: str) -> str:
    json_s, live_s = live["json-to-file"], live["live-view"]
    ratio = live["ratio"]
    k, n = live["k"], live["urls"]

    def checks(v: dict[str, Any]) -> str:
        return f"{v['ok']}/{v['n']} ok" if v["ok"] == v["n"] else f"⚠ {v['ok']}/{v['n']} ok"

    rows = [
        "| variant | command | URLs/s (median) | × json-to-file | CPU ms/URL | peak RSS MB | terminal output "
        "| checks | other load |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
        f"| json-to-file | `fetchpool -c {k} --json URLS > FILE` (no terminal) | {json_s['rate']:,.0f} | 1.000 "
        f"| {json_s['cpu_ms_per_url']:.3f} | {json_s['peak_rss_mb']:.1f} | — | {checks(json_s)} "
        f"| {json_s['other_load_pct']:.0f}% |",
        f"| live-view | `fetchpool -c {k} -o FILE.jsonl URLS` on a {live['columns']}×{live['rows']} pty "
        f"| {live_s['rate']:,.0f} | {ratio:.3f} | {live_s['cpu_ms_per_url']:.3f} | {live_s['peak_rss_mb']:.1f} "
        f"| {live['tty_bytes'] / 1024:,.0f} KiB | {checks(live_s)} | {live_s['other_load_pct']:.0f}% |",
    ]
    if ratio >= 1:
        verdict = "✅ met (the live runs were not slower)"
    elif live["target_met"]:
        verdict = f"✅ met (the live view costs {100 * (1 - ratio):.1f}% of the throughput)"
    else:
        verdict = f"⚠ missed: the live view costs {100 * (1 - ratio):.1f}% of the throughput"
    lines = [
        *rows,
        "",
        f"**Live ÷ json throughput: {ratio:.3f}** (ratio of the medians; per round: "
        + ", ".join(f"{x:.3f}" for x in live["paired_ratios"])
        + f") — target ≥ {LIVE_TARGET:.2f}: {verdict}.",
        "",
        f"CPU per URL: live view {live_s['cpu_ms_per_url']:.3f} ms, json-to-file {json_s['cpu_ms_per_url']:.3f} ms "
        f"(× {live['cpu_ratio']:.3f}). URLs/s per run: json-to-file "
        + ", ".join(f"{x:,}" for x in json_s["rates"])
        + "; live-view "
        + ", ".join(f"{x:,}" for x in live_s["rates"])
        + ".",
        "",
        LIVE_NOTES.format(n=n, k=k),
        "",
        f"### Final screen of the last live run (last {LIVE_SCREEN_LINES} lines at most)",
        "",
        f"What the pty received, {live['screen_how']}; the raw typescript is kept in `benchmarks/out/{typescript_name}`.",
        "",
        "```text",
        str(live["screen"]),
        "```",
    ]
    return "\n".join(lines)


LIVE_NOTES = """\
Both variants fetch the same {n:,} URL list (1 KiB nginx file, CPU-bound, `-c {k}`), alternated run by run
(json, live, json, live, …) after one warm-up of each. json-to-file has no terminal at all (stdout and stderr are
files), so no view of any kind is drawn. live-view runs with stdout and stderr on a pseudo-terminal (`pty.openpty`,
window size set with TIOCSWINSZ, `TERM=xterm-256color`, no `NO_COLOR`/`COLUMNS`/`LINES`), which is what a person
at a terminal gets: the full live view on stdout while `-o` writes the records, as JSON lines (the name ends in
`.jsonl`), which are read back and checked like the json run's stdout. A thread in the runner drains the pty all the
time (a terminal that never reads would block the view); that is the stand-in for a terminal emulator, and its CPU
is counted in "other load", not in the tool's CPU. Peak RSS is GNU time's `%M` as above."""


# --------------------------------------------------------------------------- memory


def _url_lines(targets: Targets, n: int, chunk: int = 2000) -> Iterator[bytes]:
    for start in range(0, n, chunk):
        yield "".join(targets.url("1k", i) + "\n" for i in range(start, min(n, start + chunk))).encode()


def run_memory(
    targets: Targets, fetchpool: str, full_urls: int, pipe_lines: int, pipe_seconds: float, work: Path
) -> dict[str, object]:
    """Peak RSS of fetchpool streaming stdin: one complete run, one long pipe cut short.

    (a) `full_urls` real URLs on stdin, fetched completely: peak RSS from wait4, every record checked.
    (b) `pipe_lines` URL lines generated into a pipe; fetchpool fetches for `pipe_seconds`, we sample
        /proc/PID/status (VmHWM, VmRSS) and then SIGTERM it. Fetching a million URLs at a few
        thousand per second would take minutes, so (b) measures whether memory grows with input
        consumed, not a finished run. A reader that slurped stdin would show it at once.
    """
    k = 64
    result: dict[str, object] = {"k": k}
    urls = work / f"mem-urls-{full_urls}.txt"
    with open(urls, "wb") as f:
        for chunk in _url_lines(targets, full_urls):
            f.write(chunk)
    out = work / "mem-out.jsonl"
    err = work / "mem-err.txt"
    log(f"memory (a): {full_urls:,} URLs on stdin, -c {k}, fetched fully")
    m = measure([fetchpool, "-c", str(k), "--json"], timeout=run_timeout(full_urls), stdin=urls, stdout=out, stderr=err)
    outcome = read_outcome(Tool("fetchpool", lambda f, c, kk: [], "stdout", "json"), out)
    ok = check(
        Tool("fetchpool", lambda f, c, kk: [], "stdout", "json"),
        f"memory {full_urls:,} URLs",
        full_urls,
        m,
        outcome,
        err,
    )
    result["full"] = {
        "urls": full_urls,
        "wall": m.wall,
        "rate": full_urls / m.wall,
        "cpu_ms_per_url": 1000 * m.cpu / full_urls,
        "peak_rss_mb": m.maxrss_kb / 1024,
        "ok": ok,
    }
    log(
        f"memory (a): {m.wall:.1f}s, {full_urls / m.wall:,.0f} URL/s, peak RSS {m.maxrss_kb / 1024:.1f} MB, {'ok' if ok else 'FAILED'}"
    )

    log(f"memory (b): {pipe_lines:,} lines through a pipe, sampled for {pipe_seconds:.0f}s then SIGTERM")
    out2 = work / "mem-pipe-out.jsonl"
    written = [0]
    with open(out2, "wb") as fout, open(err, "wb") as ferr:
        proc = subprocess.Popen(
            [fetchpool, "-c", str(k), "--json"],
            stdin=subprocess.PIPE,
            stdout=fout,
            stderr=ferr,
            env=child_env(),
            start_new_session=True,
        )
    _GROUPS.add(proc.pid)
    assert proc.stdin is not None
    pipe = proc.stdin

    def feed() -> None:
        try:
            for chunk in _url_lines(targets, pipe_lines, chunk=500):
                pipe.write(chunk)
                written[0] += 500
            pipe.close()
        except (BrokenPipeError, ValueError, OSError):
            pass

    feeder = threading.Thread(target=feed, name="feeder", daemon=True)
    start = time.monotonic()
    feeder.start()
    samples: list[tuple[float, int, int]] = []
    final: dict[str, int] = {}
    reaped = 0
    status = 0
    # wait4(WNOHANG), not proc.poll(): poll would reap the child and lose its exit status.
    while time.monotonic() - start < pipe_seconds:
        st = proc_status_kb(proc.pid)
        if st:
            final = st
            samples.append((time.monotonic() - start, st.get("VmRSS", 0), st.get("VmHWM", 0)))
        reaped, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if reaped:
            break
        time.sleep(0.2)
    finished_alone = bool(reaped)
    lines_at_stop = min(written[0], pipe_lines)
    if not reaped:
        _kill_group(proc.pid, signal.SIGTERM)
        killer = threading.Timer(15, _kill_group, (proc.pid, signal.SIGKILL))  # if SIGTERM is ignored
        killer.daemon = True
        killer.start()
        try:
            _, status, _ = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    _GROUPS.discard(proc.pid)
    try:
        pipe.close()
    except (BrokenPipeError, OSError):
        pass
    feeder.join(timeout=5)
    with open(out2, "rb") as f:
        records = sum(1 for _ in f)
    if finished_alone and records != pipe_lines:
        loud(
            f"memory pipe run: fetchpool exited by itself after {records:,} of {pipe_lines:,} records\n   {_tail(err, 5)}"
        )
    # VmHWM of the exec'd process itself; wait4's ru_maxrss would include this runner's
    # pre-exec RSS (see measure), so it is not used here.
    hwm = max([s[2] for s in samples] + [final.get("VmHWM", 0)])
    early = next((s[1] for s in samples if s[0] >= min(5.0, pipe_seconds / 4)), samples[0][1] if samples else 0)
    late = samples[-1][1] if samples else 0
    result["pipe"] = {
        "lines_generated": pipe_lines,
        "lines_written_to_pipe": lines_at_stop,
        "records_written": records,
        "seconds": pipe_seconds,
        "finished_before_sigterm": finished_alone,
        "exit_code": proc.returncode,
        "peak_rss_mb": hwm / 1024,
        "rss_early_mb": early / 1024,
        "rss_late_mb": late / 1024,
        "early_at_s": min(5.0, pipe_seconds / 4),
        "rss_timeline_mb": _timeline(samples, pipe_seconds),
    }
    log(
        f"memory (b): {records:,} records, {lines_at_stop:,} lines taken from the pipe, peak RSS {hwm / 1024:.1f} MB "
        f"(RSS {early / 1024:.1f} MB early -> {late / 1024:.1f} MB at the end), exit {proc.returncode}"
    )
    if proc.returncode not in (0, 143, -15):
        loud(f"memory pipe run: fetchpool exit code {proc.returncode} after SIGTERM (expected 143)\n   {_tail(err, 5)}")
    if late > early * 1.5 and late - early > 20 * 1024:
        loud(f"memory pipe run: RSS grew from {early / 1024:.1f} MB to {late / 1024:.1f} MB while streaming")
    return result


def _timeline(samples: list[tuple[float, int, int]], seconds: float, points: int = 6) -> list[tuple[float, float]]:
    """RSS at evenly spaced moments: tells a plateau (fine) from steady growth (a leak)."""
    out: list[tuple[float, float]] = []
    for i in range(1, points + 1):
        moment = seconds * i / points
        before = [s for s in samples if s[0] <= moment + 0.5]
        if before:
            out.append((round(moment, 1), round(before[-1][1] / 1024, 1)))
    return out


def memory_section(mem: dict[str, object]) -> str:
    full = mem["full"]
    pipe = mem["pipe"]
    assert isinstance(full, dict) and isinstance(pipe, dict)
    return "\n".join(
        [
            "| input | how | URLs fetched | peak RSS MB | notes |",
            "|---|---|---:|---:|---|",
            f"| {full['urls']:,} stdin lines | fetched completely, `-c {mem['k']}` | {full['urls']:,} "
            f"| {full['peak_rss_mb']:.1f} | {full['rate']:,.0f} URL/s, {full['cpu_ms_per_url']:.3f} CPU ms/URL"
            f"{'' if full['ok'] else ', ⚠ checks failed'} |",
            f"| {pipe['lines_generated']:,} stdin lines (generated into a pipe) | ran {pipe['seconds']:.0f} s, then SIGTERM "
            f"| {pipe['records_written']:,} | {pipe['peak_rss_mb']:.1f} | {pipe['lines_written_to_pipe']:,} lines accepted by the "
            f"pipe; RSS {pipe['rss_early_mb']:.1f} MB at {pipe['early_at_s']:.0f} s → {pipe['rss_late_mb']:.1f} MB at the end; "
            f"exit {pipe['exit_code']} |",
            "",
            "RSS over time in the pipe run: "
            + ", ".join(f"{t:g} s: {mb:.1f} MB" for t, mb in pipe.get("rss_timeline_mb", [])),
        ]
    )


# --------------------------------------------------------------------------- startup


def run_startup(targets: Targets, fetchpool: str, reps: int, work: Path, python: str) -> list[dict[str, object]]:
    """Median wall time of short commands, alternated, compared with `import requests`.

    `python` is the interpreter of fetchpool's own environment, so the references pay the
    same site start-up (.pth files) as fetchpool's console script does.
    """
    one = work / "one-url.txt"
    one.write_text(targets.url("1k", 0) + "\n")
    out = work / "startup-out.txt"
    commands = [
        ("`fetchpool --version`", [fetchpool, "--version"], None),
        ("`fetchpool --json` one URL", [fetchpool, "--json", str(one)], 1),
        ('`python -c "import requests"`', [python, "-c", "import requests"], None),
        ('`python -c "pass"` (floor)', [python, "-c", "pass"], None),
    ]
    times: dict[str, list[Measurement]] = {label: [] for label, _, _ in commands}
    for _ in range(reps):
        for label, argv, expect in commands:
            out.unlink(missing_ok=True)  # measure() appends
            m = measure(argv, timeout=60, stdout=out, stderr=work / "startup-err.txt")
            if m.returncode != 0:
                loud(f"startup {label}: exit code {m.returncode}")
            if expect is not None:
                oc = read_outcome(Tool("fetchpool", lambda f, c, k: [], "stdout", "json"), out)
                if oc.records != expect or set(oc.statuses) != {"200"}:
                    loud(f"startup {label}: {oc.records} records {dict(oc.statuses)} {oc.details}")
            times[label].append(m)
    ref = statistics.median(m.wall for m in times['`python -c "import requests"`'])
    rows = []
    for label, _, _ in commands:
        ms = times[label]
        wall = statistics.median(m.wall for m in ms)
        rows.append(
            {
                "command": label,
                "median_ms": 1000 * wall,
                "ratio": wall / ref,
                "cpu_ms": 1000 * statistics.median(m.cpu for m in ms),
                "rss_mb": max(m.maxrss_kb for m in ms) / 1024,
            }
        )
        log(f"startup {label}: median {1000 * wall:.0f} ms")
    return rows


def startup_table(rows: list[dict[str, object]], reps: int) -> str:
    lines = [
        f"| command | median wall ms ({reps} runs) | × `import requests` | CPU ms | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['command']} | {r['median_ms']:.0f} | {r['ratio']:.2f} | {r['cpu_ms']:.0f} | {r['rss_mb']:.1f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- report


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        nproc = str(len(os.sched_getaffinity(0)))
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": nproc,
        "cpu": model,
        "python": f"{platform.python_version()} ({sys.executable})",
        "kernel": platform.release(),
    }


def build_report(
    args: argparse.Namespace,
    info: dict[str, str],
    versions: dict[str, str],
    targets: Targets,
    sections: list[tuple[str, str]],
) -> str:
    head = [
        "# fetchpool benchmark results",
        "",
        f"Generated by `python benchmarks/run.py {' '.join(sys.argv[1:])}`".rstrip()
        + " — rerun it to refresh this file.",
        "",
        f"- date: {info['date']}",
        f"- machine: nproc {info['nproc']}, CPU {info['cpu']}, Linux {info['kernel']}",
        f"- Python {info['python']}",
        *(f"- {k}: {v}" for k, v in versions.items()),
        f"- target server: {targets.description}, HTTP/1.1 keep-alive on 127.0.0.1",
        f"- peak RSS: {'GNU time %M (ru_maxrss of the tool itself)' if GNU_TIME else '⚠ plain wait4 ru_maxrss (includes runner floor)'}",
        f"- mode: {'QUICK (1 run per tool, small lists: indicative only)' if args.quick else f'{args.runs} runs per tool, medians'}",
        "",
    ]
    if ANOMALIES:
        head += ["## ⚠ Anomalies", ""]
        for a in ANOMALIES:
            first, *rest = a.splitlines()
            head += [f"- {first}", *(f"  - `{line.strip()}`" for line in rest if line.strip())]
        head.append("")
    body = []
    for title, text in sections:
        body += [f"## {title}", "", text, ""]
    return "\n".join(head + body)


THROUGHPUT_NOTES = """\
URLs/s is the median over runs of URLs ÷ wall time (process start to exit, including interpreter
start-up). CPU ms/URL is the median of (user+sys of the tool process and all its children, from
`os.wait4`) ÷ URLs. Peak RSS is the largest `ru_maxrss` over runs: for xargs-curl that is the largest
single curl/xargs process, not a sum. × baseline / × curl divide by the baseline_threadpool.py and
curl --parallel medians of the same scenario. Tools run alternately (A B C D A B C D …) on the same URL
list; every run must give exactly one 200 per URL and exit 0, else its row is marked ⚠. The nginx
worker shares the 2 cores with the client under test. For the latency-bound row, the limit is
K ÷ 50 ms = K × 20 URLs/s. "other load" is the median share of the whole machine's CPU (all cores)
used during the runs by processes that were neither the tool nor the server (from /proc/stat): when it is
more than a few %, something else competed for the cores and absolute numbers are pessimistic."""

MEMORY_NOTES = """\
Why two shapes: fetching 1,000,000 URLs at a few thousand per second would take many minutes, so the
million-line case is a *streaming* check: a generator writes URL lines into fetchpool's stdin pipe,
fetchpool fetches for a fixed time while /proc/PID/status (VmHWM, VmRSS) is sampled, then gets SIGTERM.
A tool that slurped its input would hold all lines (tens of MB) at once and the pipe would accept all of
them immediately; a streaming one takes lines only as fast as it fetches and keeps a flat RSS. The
smaller run is fetched completely (peak RSS from `os.wait4`), so both can be compared directly."""


def startup_notes(source: str, python: str) -> str:
    how = (
        "fetchpool is the `fetchpool` console script of a regular, non-editable `pip install` of the git snapshot "
        "into a venv of its own (dependencies pinned to the runner venv's versions), as `pip install .` users get it"
        if "non-editable" in source
        else f"fetchpool is {source}"
    )
    return (
        f"{how}. The two python reference rows run "
        + ("that venv's `python`" if python != sys.executable else f"`{python}`")
        + ", the interpreter of fetchpool's own environment, so they "
        "pay the same site start-up (.pth files) as fetchpool does. An editable install would add setuptools' "
        "editable import finder (~10-20 ms: it imports pathlib, fnmatch and re from a .pth file) to every start-up "
        "in its venv, which is why the benchmark no longer runs the snapshot through the development venv."
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="fetchpool benchmark against local nginx (see benchmarks/README.md)")
    p.add_argument("--quick", action="store_true", help="small lists, 1 run per tool: finishes in under a minute")
    p.add_argument("--throughput", action="store_true", help="run the throughput scenarios (default: all parts)")
    p.add_argument("--memory", action="store_true", help="run the streaming-input memory scenario")
    p.add_argument("--startup", action="store_true", help="run the startup-time scenario")
    p.add_argument(
        "--live",
        action="store_true",
        help="run the live-view overhead scenario (live terminal view vs --json to a file)",
    )
    p.add_argument("--urls", type=int, help="URLs per throughput list (default 20000; 2000 with --quick)")
    p.add_argument("--runs", type=int, help="runs per tool and scenario, medians taken (default 3; 1 with --quick)")
    p.add_argument("--tools", default=",".join(ALL_TOOLS), help=f"comma list from {','.join(ALL_TOOLS)}")
    p.add_argument(
        "--server", choices=("auto", "nginx", "python"), default="auto", help="target server (auto: nginx if installed)"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="markdown results file (default benchmarks/results.md; results-quick.md etc. for partial runs)",
    )
    p.add_argument("--fetchpool", metavar="PATH", help="fetchpool executable to benchmark (default: the venv's)")
    p.add_argument("--ref", metavar="GITREF", help="benchmark fetchpool as committed at GITREF (git archive snapshot)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (URL lists, outputs, nginx config)")
    args = p.parse_args(argv)
    if not (args.throughput or args.memory or args.startup or args.live):
        args.throughput = args.memory = args.startup = args.live = True
    args.urls = args.urls or (2000 if args.quick else 20000)
    args.runs = args.runs or (1 if args.quick else 3)
    if args.output is None:
        parts = [n for n in ("throughput", "live", "memory", "startup") if getattr(args, n)]
        tag = "quick" if args.quick else ("" if len(parts) == 4 else "-".join(parts))
        args.output = HERE / (f"results-{tag}.md" if tag else "results.md")
    return args


def preflight(fetchpool: str, targets: Targets, work: Path) -> None:
    """One URL through fetchpool before anything is timed: a broken build fails fast and clearly."""
    one = work / "preflight.txt"
    one.write_text(targets.url("1k", 0) + "\n")
    out, err = work / "preflight.out", work / "preflight.err"
    m = measure([fetchpool, "--json", str(one)], timeout=60, stdout=out, stderr=err)
    outcome = read_outcome(Tool("fetchpool", lambda f, c, k: [], "stdout", "json"), out)
    if m.returncode != 0 or outcome.records != 1 or set(outcome.statuses) != {"200"}:
        raise SystemExit(
            f"run.py: fetchpool ({fetchpool}) failed on one local URL: exit {m.returncode}, "
            f"{outcome.records} records {dict(outcome.statuses)} {outcome.details}\n{_tail(err, 8)}\n"
            "Is the working tree mid-edit? Try `--ref HEAD~1` (or any commit) to benchmark a committed snapshot."
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # A shell starts background jobs with SIGINT ignored; we still want Ctrl-C / kill -INT to clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    atexit.register(cleanup)
    tmp = Path(tempfile.mkdtemp(prefix="fetchpool-bench-"))
    try:
        code = _run(args, tmp)
    except KeyboardInterrupt:
        log("interrupted: stopping servers and tools")
        return 130
    finally:
        cleanup()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if ANOMALIES:
        log(f"\n{len(ANOMALIES)} anomal{'y' if len(ANOMALIES) == 1 else 'ies'}:")
        for a in ANOMALIES:
            log(f" - {a}")
        return 1
    return code


def _run(args: argparse.Namespace, tmp: Path) -> int:
    python = sys.executable
    if args.ref:
        fetchpool, source, python = fetchpool_from_ref(args.ref, tmp)
    elif args.fetchpool:
        fetchpool, source = str(Path(args.fetchpool).resolve()), f"{args.fetchpool} (given with --fetchpool)"
    else:
        fetchpool, source = find_fetchpool(), working_tree_state() + editable_note()
    log(f"fetchpool: {fetchpool} ({source})")
    if GNU_TIME is None:
        loud(
            "GNU time not found (apt-get install time): peak RSS falls back to plain wait4, which includes "
            "this runner's own ~25+ MB RSS as a floor under every tool (see measure())"
        )
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(wanted) - set(ALL_TOOLS)
    if unknown:
        raise SystemExit(f"run.py: unknown tools {sorted(unknown)}; choose from {ALL_TOOLS}")
    tools, versions = make_tools(fetchpool, wanted, python)
    versions["fetchpool source"] = source
    info = machine_info()
    started = time.monotonic()
    targets = Servers(tmp, args.server).start()
    versions.update(targets.versions)
    self_check(targets)
    log(f"targets: {targets.description} at {targets.static_base} (temp {tmp})")
    preflight(fetchpool, targets, tmp)
    sections: list[tuple[str, str]] = []
    raw: dict[str, object] = {"info": info, "versions": versions, "args": {k: str(v) for k, v in vars(args).items()}}
    runs_note = f"{args.runs} run{'s' if args.runs > 1 else ''} per tool per scenario"
    if args.runs < 3:
        runs_note += " — fewer than 3, so these are single samples, not medians"
    outdir = HERE / "out"
    outdir.mkdir(exist_ok=True)
    if args.throughput:
        n = args.urls
        scenarios = [
            Scenario("1k-k16", "1 KiB, K=16 (CPU-bound)", "1k", 16, n),
            Scenario("1k-k64", "1 KiB, K=64 (CPU-bound)", "1k", 64, n),
            Scenario("sleep-k64", "50 ms echo_sleep, K=64 (latency-bound)", "sleep", 64, n, SLEEP_SECONDS),
        ]
        records = run_throughput(targets, tools, scenarios, args.runs, tmp)
        table = throughput_table(records, scenarios, tools)
        print("\n" + table + "\n", flush=True)
        sections.append((f"Throughput ({n:,} URLs per list, {runs_note})", table + "\n\n" + THROUGHPUT_NOTES))
        raw["throughput"] = [asdict(r) for r in records]
    if args.live:
        live, typescript, live_records = run_live(targets, fetchpool, args.urls, args.runs, tmp)
        typescript_name = f"{args.output.stem}-live.typescript"
        (outdir / typescript_name).write_bytes(typescript)
        text = live_section(live, typescript_name)
        print("\n" + text + "\n", flush=True)
        title = f"Live view overhead ({args.urls:,} URLs, 1 KiB, K={LIVE_K}, {runs_note.replace('tool', 'variant')})"
        sections.append((title, text))
        raw["live"] = {**live, "runs": [asdict(r) for r in live_records]}
    if args.memory:
        full, pipe_lines, seconds = (5_000, 1_000_000, 5.0) if args.quick else (100_000, 1_000_000, 60.0)
        mem = run_memory(targets, fetchpool, full, pipe_lines, seconds, tmp)
        table = memory_section(mem)
        print("\n" + table + "\n", flush=True)
        sections.append(("Memory: streaming stdin (fetchpool only)", table + "\n\n" + MEMORY_NOTES))
        raw["memory"] = mem
    if args.startup:
        reps = 3 if args.quick else 10
        rows = run_startup(targets, fetchpool, reps, tmp, python)
        table = startup_table(rows, reps)
        print("\n" + table + "\n", flush=True)
        sections.append(("Startup", table + "\n\n" + startup_notes(source, python)))
        raw["startup"] = rows
    report = build_report(args, info, versions, targets, sections)
    args.output.write_text(report + f"\nTotal benchmark time: {time.monotonic() - started:.0f} s.\n")
    raw["anomalies"] = ANOMALIES
    (outdir / f"{args.output.stem}.json").write_text(json.dumps(raw, indent=1, default=str))
    log(f"wrote {args.output} and {outdir / (args.output.stem + '.json')} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
