"""Rerunnable throughput / CPU / memory / startup benchmark of fetchpool against real local servers.

Why this exists: "is fetchpool fast enough?" only has an answer next to (a) what curl
does on the same URL list, (b) what a competent hand-written requests + thread pool
script does and (c) what the best asyncio Python client (aiohttp) does. Every number here
comes from real processes talking HTTP/1.1 keep-alive to nginx on 127.0.0.1, measured the
same way (wall clock and user+sys CPU of every process of the run from `os.wait4`, peak
RSS from GNU time's wait4: see `fpbench.measuring.measure` for why), with tools alternated
run by run so drift (thermal, noisy neighbours) hits every tool alike, the CPU used
meanwhile by unrelated processes recorded, and every run's output checked so a
fast-but-wrong run cannot win.

    python benchmarks/run.py            # full: throughput + live + memory + startup -> results.md
    python benchmarks/run.py --quick    # smoke run, 1 run per tool -> results-quick.md
    python benchmarks/run.py --live     # only the live-view overhead scenario (fetchpool on a pty)
    python benchmarks/run.py --memory   # only the streaming-input memory scenario
    python benchmarks/run.py --startup  # only the startup-time scenario
    python benchmarks/run.py --ref REF  # fetchpool as committed at a git ref, pip-installed into its own venv

Only loopback addresses are ever contacted: every URL is built from the local server's
127.0.0.1 address, and proxy variables are stripped from every child's environment.
The code lives in the `fpbench` package next to this file, one module per part; see
benchmarks/README.md for the layout and what each column means.
"""

from __future__ import annotations

import sys

from fpbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
