"""Peak memory of fetchpool's main process and of each worker process on a long stdin.

Feeds N lines (default 1,000,000) to `fetchpool --engine E` through a pipe and samples, twice a
second, the main process's peak RSS (VmHWM) and each worker process's RSS from /proc. The
URLs are under `.invalid`, answered without a lookup or a connection, so the run costs minutes,
not hours, while every line still goes through the whole path: reading, the window, the
dispatcher, a worker process and back, the writer.

    python benchmarks/engine_memory.py [--lines 1000000] [--engine processes]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path


def _status(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--engine", default="processes")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    command = [sys.executable, "-m", "fetchpool", "--engine", args.engine, "-c", str(args.concurrency), "-q"]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stdin is not None

    def feed() -> None:
        block = 10_000
        for start in range(0, args.lines, block):
            chunk = "".join(
                f"http://h{i % 50_000}.invalid/p{i}\n" for i in range(start, min(start + block, args.lines))
            )
            proc.stdin.write(chunk.encode())  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]

    threading.Thread(target=feed, daemon=True).start()
    started, peak_main, peak_child, samples = time.monotonic(), 0, 0, []
    while proc.poll() is None:
        peak_main = max(peak_main, _status(proc.pid, "VmHWM"))
        children = [(pid, _status(pid, "VmRSS")) for pid in _children(proc.pid)]
        peak_child = max([peak_child] + [rss for _, rss in children])
        samples.append((round(time.monotonic() - started), _status(proc.pid, "VmRSS"), [r for _, r in children]))
        time.sleep(0.5)
    took = time.monotonic() - started
    print(f"{args.lines:,} lines, --engine {args.engine}, -c {args.concurrency}: {took:.0f} s, exit {proc.returncode}")
    print(f"main process peak RSS {peak_main / 1024:.1f} MB; largest child RSS {peak_child / 1024:.1f} MB")
    for second, rss, kids in samples[:: max(len(samples) // 8, 1)]:
        print(f"  t={second:>4} s  main {rss / 1024:6.1f} MB  children {[round(k / 1024, 1) for k in kids]}")


if __name__ == "__main__":
    main()
