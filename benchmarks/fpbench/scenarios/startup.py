"""Start-up time of short commands next to `python -c "import requests"`."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from ..checks import read_outcome
from ..measuring import Measurement, measure
from ..procs import log, loud
from ..targets import Targets
from ..tools import records_tool


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
                oc = read_outcome(records_tool(), out)
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
