"""How long a finished record waits before it reaches the reader of fetchpool's stdout, per engine.

A local server notes when it has sent each response (monotonic clock, shared by every process
on the machine); the reader of fetchpool's stdout notes when each record arrives. The gap is
an upper bound on the wait: it also holds the client reading the tiny body, the hand-off from
a worker process, the write and the pipe. One URL in ten takes 2 s, so a record that waited
for a slow URL of its batch would show up as a gap of seconds.

    python benchmarks/stream_latency.py [--urls 4000] [--engines threads,processes]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SENT: dict[str, float] = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if "slow" in query:
            time.sleep(2.0)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        SENT[query["id"][0]] = time.monotonic()  # just before the last bytes go: a record cannot beat it
        self.wfile.write(body)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def measure(engine: str, base: str, count: int, concurrency: int) -> list[float]:
    urls = [f"{base}/?id={engine}-{i}" + ("&slow=1" if i % 10 == 0 else "") for i in range(count)]
    command = [sys.executable, "-m", "fetchpool", "--engine", engine, "-c", str(concurrency), "--retries", "0"]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    threading.Thread(target=lambda: (proc.stdin.write("\n".join(urls).encode() + b"\n"), proc.stdin.close())).start()
    waits = []
    for line in proc.stdout:
        arrived = time.monotonic()
        key = parse_qs(urlsplit(json.loads(line)["url"]).query)["id"][0]
        waits.append(arrived - SENT[key])
    proc.wait()
    return waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--engines", default="threads,processes")
    args = parser.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"{args.urls} URLs (one in ten takes 2 s), -c {args.concurrency}, {os.cpu_count()} CPUs")
    for engine in args.engines.split(","):
        waits = sorted(measure(engine, base, args.urls, args.concurrency))
        p50, p99 = statistics.median(waits), waits[int(len(waits) * 0.99) - 1]
        print(
            f"{engine:>10}: wait from response sent to record read, ms: p50 {p50 * 1000:.1f}  "
            f"p99 {p99 * 1000:.1f}  max {waits[-1] * 1000:.1f}  ({len(waits)} records)"
        )
    server.shutdown()


if __name__ == "__main__":
    main()
