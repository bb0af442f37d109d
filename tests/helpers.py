"""Test helpers shared by several files: a server whose answers a test scripts between runs."""

from __future__ import annotations

import time
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
