"""Correctness of every run: exactly one 200 per URL and exit 0, or the run is shouted about."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .measuring import Measurement
from .procs import loud, tail
from .tools import Tool


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
    if tool.kind == "counts":
        counted: Counter[str] = Counter()
        for line in text.splitlines():
            status, _, count = line.strip().rpartition(" ")
            if status and count.isdigit():
                counted[status] += int(count)
            elif line.strip():
                counted["unparseable"] += 1
        return Outcome(sum(counted.values()), counted, [])
    codes = Counter(line.strip() for line in text.splitlines() if line.strip())
    return Outcome(sum(codes.values()), codes, [])


def check(tool: Tool, label: str, expect: int, m: Measurement, out: Outcome, stderr_path: Path | None) -> bool:
    """Every run must produce exactly `expect` records, all 200, exit 0, in time, and leave no process behind."""
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
    if m.lingering:
        problems.append(f"{len(m.lingering)} process(es) outlived it and were killed: {', '.join(m.lingering[:5])}")
    if not problems:
        return True
    extra = ""
    if out.details:
        extra += "\n   errors: " + "; ".join(out.details)
    if stderr_path is not None and tool.result_stream != "stderr":
        last = tail(stderr_path, 5)
        if last:
            extra += f"\n   stderr: {last}"
    loud(f"{label} {tool.name}: " + ", ".join(problems) + extra)
    return False
