"""Test helpers shared by several files: a server whose answers a test scripts between runs, process groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from servers import Handler, TestServer


class ScriptedHandler(Handler):
    """`/s/NAME` answers what `server.script[NAME]` says: (status, body, headers); ETag-aware."""

    def ep_s(self, arg: str, query: dict[str, str]) -> None:
        server: Any = self.server
        status, body, headers = server.script.get(arg, (200, b"ok", {}))
        delay = float(query.get("delay", server.delay.get(arg, 0)))
        if delay:
            time.sleep(delay)
        etag = headers.get("ETag")
        if etag is not None and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.reply(status, body, {"Content-Type": "text/plain", **headers})


class ScriptedServer(TestServer):
    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = ScriptedHandler
        self.script: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.delay: dict[str, float] = {}


# -- process groups: a CLI started in a session of its own, and what is left of it --------------


def spawn_cli(*args: str, env: dict[str, str], stdout: Any = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """`python -m fetchpool ARGS` in its own session and process group, as a shell job is."""
    command = [sys.executable, "-m", "fetchpool", *args]
    return subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, env=env, start_new_session=True)


def group(pgid: int) -> list[str]:
    """Every process (zombies too) in process group `pgid`: "PID STATE CMDLINE"."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if int(fields[2]) == pgid:
                found.append(f"{entry.name} {fields[0]} {cmdline[:120]}")
    return found


def wait_in_group(pgid: int, marker: str, count: int = 1, timeout: float = 30) -> None:
    """Poll until `count` processes of the group have `marker` in their command line."""
    end = time.monotonic() + timeout
    while sum(marker in line for line in group(pgid)) < count:
        assert time.monotonic() < end, f"no {count} x {marker!r} in {group(pgid)}"
        time.sleep(0.01)


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the whole group; one that is gone already is no error."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
