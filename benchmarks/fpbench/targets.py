"""The local targets: nginx (or the asyncio fallback) on free loopback ports, and a self-check."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .procs import GROUPS, HERE, LOOPBACK, SERVER_PIDS, child_env, free_port, kill_group, loud, tail, wait_listening

SLEEP_SECONDS = 0.05
ECHO_MODULE_CANDIDATES = (
    "/usr/lib/nginx/modules/ngx_http_echo_module.so",
    "/usr/share/nginx/modules/ngx_http_echo_module.so",
    "/usr/lib64/nginx/modules/ngx_http_echo_module.so",
)
NGINX_HINT = "install it with: apt-get update && apt-get install -y nginx libnginx-mod-http-echo"


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
            GROUPS.add(proc.pid)
            self.procs.append(proc)
            SERVER_PIDS.append(proc.pid)
            if wait_listening(port, proc):
                return f"http://{LOOPBACK}:{port}"
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            last_error = errlog.read_text(errors="replace") + tail(self.tmp / "error.log")
        raise SystemExit(f"run.py: nginx did not start:\n{last_error}")

    def _start_fallback(self) -> str:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "fallback_server.py"), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=child_env(),
            start_new_session=True,
        )
        GROUPS.add(proc.pid)
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
