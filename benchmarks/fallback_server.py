"""A tiny asyncio HTTP/1.1 keep-alive server: the stand-in target when nginx is missing.

Why it exists: the benchmark must still run on a machine without nginx, against the same
paths (`/1k`, `/100k`, `/404`, `/sleep`). It is far slower than nginx and shares the two
cores with the clients, so numbers taken against it are only roughly comparable; run.py
warns when it falls back. It binds loopback only and runs as a separate process so its
CPU time is never charged to a client under test.

    python benchmarks/fallback_server.py [--port 0]

prints `PORT <n>` on stdout once it listens, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

BODIES = {b"/1k": b"x" * 1024, b"/100k": b"y" * (100 * 1024)}
SLEEP_PATH = b"/sleep"
SLEEP_SECONDS = 0.05
MAX_HEAD = 64 * 1024


def _response(status: int, reason: str, body: bytes, head_only: bool, close: bool) -> bytes:
    """One complete response; Content-Length always set so the connection can be reused."""
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Server: fetchpool-bench-fallback",
        "Content-Type: application/octet-stream",
        f"Content-Length: {len(body)}",
        "Connection: close" if close else "Connection: keep-alive",
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head if head_only else head + body


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve requests on one connection until the client closes it (keep-alive)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, _, rest = head.partition(b"\r\n")
            parts = request_line.split(b" ")
            if len(parts) != 3:
                writer.write(_response(400, "Bad Request", b"bad request\n", False, True))
                break
            method, target, version = parts
            lowered = rest.lower()
            close = b"connection: close" in lowered or version == b"HTTP/1.0"
            length = 0
            for line in lowered.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1].strip() or b"0")
            if length:
                await reader.readexactly(length)
            path = target.split(b"?", 1)[0]
            head_only = method == b"HEAD"
            if path in BODIES:
                data = _response(200, "OK", BODIES[path], head_only, close)
            elif path == SLEEP_PATH:
                await asyncio.sleep(SLEEP_SECONDS)
                data = _response(200, "OK", b"ok\n", head_only, close)
            else:
                data = _response(404, "Not Found", b"not found\n", head_only, close)
            writer.write(data)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    """Listen on 127.0.0.1 only, announce the port, serve forever."""
    server = await asyncio.start_server(_handle, "127.0.0.1", port, limit=MAX_HEAD, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
