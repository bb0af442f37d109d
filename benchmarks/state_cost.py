"""What `--state` costs in throughput: the same list, in one process, with and without it.

The run loop (`app.drive`, records to /dev/null as JSON lines) fetches N URLs of 1 KiB from
`fallback_server.py` (a separate process), first without state, then with a state file
that already holds every URL (the cron case: one lookup and one update per URL), in
alternating rounds so drift hits both alike. Prints the median of each and the cost.

    python benchmarks/state_cost.py [--urls 20000] [--rounds 3] [-c 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fetchpool.app import Environment, OutputPlan, drive
from fetchpool.monitor import MonitorPlan
from fetchpool.options import Options


def _server() -> tuple[subprocess.Popen[str], int]:
    script = Path(__file__).with_name("fallback_server.py")
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, int(line.split()[1])


def _once(listing: str, options: Options, monitor: MonitorPlan | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one whole run."""
    with open(os.devnull, "w") as sink:
        env = Environment(stdout=sink, stderr=sink, stdin_isatty=False, stdout_isatty=False, stderr_isatty=False)
        plan = OutputPlan(format="jsonl", progress=False, quiet=True)
        started, cpu = time.perf_counter(), time.process_time()
        drive(env.bind(), (listing,), None, options, plan, monitor)
        return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    args = parser.parse_args()
    server, port = _server()
    try:
        with tempfile.TemporaryDirectory() as folder:
            listing = os.path.join(folder, "urls.txt")
            with open(listing, "w") as f:
                f.writelines(f"http://127.0.0.1:{port}/1k?i={i}\n" for i in range(args.urls))
            options = Options(concurrency=args.concurrency, retries=0)
            state = MonitorPlan(state=os.path.join(folder, "state.db"))
            _once(listing, options, state)  # warm: the state holds every URL, as in cron
            plain, with_state = [], []
            for _ in range(args.rounds):
                plain.append(_once(listing, options, None))
                with_state.append(_once(listing, options, state))
    finally:
        server.kill()
    n = args.urls
    print(f"{n:,} URLs, -c {args.concurrency}, medians of {args.rounds}:")
    for name, runs in (("without --state", plain), ("with --state   ", with_state)):
        wall = statistics.median(t for t, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        shown = ", ".join(f"{t:.2f}" for t, _ in runs)
        print(f"  {name} {n / wall:7.0f} URL/s wall ({shown} s)   {1e6 * cpu / n:6.0f} us CPU per URL")
    for i, label in ((0, "wall time"), (1, "CPU per URL")):
        a = statistics.median(r[i] for r in plain)
        b = statistics.median(r[i] for r in with_state)
        print(f"  cost in {label}: {100 * (b - a) / a:+.1f} %")


if __name__ == "__main__":
    main()
