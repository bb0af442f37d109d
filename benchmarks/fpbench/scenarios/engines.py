"""fetchpool's engines side by side: `--engine processes` and `--engine ray` next to threads, in the same rounds.

They run as tools of the scenarios marked `sample` (1 KiB at K=64, the 50 ms target at
K=256), taking turns with every other tool, so the ratios below compare runs made minutes
apart on the same list. CPU is that of every process of the run (parent, workers, Ray's
daemons: wait4 plus orphans reaped by the runner), so an engine cannot look cheaper by
moving work into children. Targets, from the design of the engines:
- CPU-bound: processes ≥ 1.4× threads in URLs/s, summed CPU per URL ≤ 1.2× threads;
- latency-bound: processes ≥ 1.4× threads;
- Ray: no target; its figures and its start-up cost say when it pays.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..checks import check, read_outcome
from ..measuring import measure
from ..procs import log
from ..rounds import RunRecord, Scenario, checks_cell, medians
from ..targets import Targets
from ..tools import ENGINE_TOOLS, SPLIT_PARTS, Tool

THROUGHPUT_TARGET = 1.4
CPU_TARGET = 1.2
STARTUP_TIMEOUT = 180.0  # a local Ray cluster can take tens of seconds to come up on a loaded machine


def engine_tools(tools: list[Tool]) -> list[Tool]:
    """fetchpool's engines, in the order of the rounds (not the split reference)."""
    return [t for t in tools if t.name in ENGINE_TOOLS]


def rows_of(tools: list[Tool]) -> list[Tool]:
    """The engines section's rows: every fetchpool variant, the split reference included."""
    return [t for t in tools if t.engine is not None]


def run_startup(targets: Targets, tools: list[Tool], reps: int, work: Path) -> dict[str, float]:
    """Median wall seconds of a one-URL run per engine, engines alternated, every run checked."""
    one = work / "engine-one-url.txt"
    one.write_text(targets.url("1k", 0) + "\n")
    out, err = work / "engine-startup.out", work / "engine-startup.err"
    walls: dict[str, list[float]] = {t.name: [] for t in engine_tools(tools)}
    for _ in range(reps):
        for tool in engine_tools(tools):
            for p in (out, err):
                p.unlink(missing_ok=True)
            m = measure(tool.argv(one, one, 1), timeout=STARTUP_TIMEOUT, stdout=out, stderr=err)
            if check(tool, "engine start-up (one URL)", 1, m, read_outcome(tool, out), err):
                walls[tool.name].append(m.wall)
    medians_s = {name: statistics.median(w) for name, w in walls.items() if w}
    log("engine start-up, one-URL run: " + ", ".join(f"{n} {1000 * s:,.0f} ms" for n, s in medians_s.items()))
    return medians_s


def _targets(sc: Scenario, med: dict[str, dict[str, float]]) -> list[str]:
    threads, procs, split = med.get("fetchpool"), med.get("fetchpool-processes"), med.get("fetchpool-split")
    if threads is None:
        return []
    lines = []
    if procs is not None:
        speed = procs["rate"] / threads["rate"]
        cpu = procs["cpu"] / threads["cpu"]
        met = "met" if speed >= THROUGHPUT_TARGET else "missed"
        line = f"- {sc.label}: processes ÷ threads **{speed:.2f}×** URLs/s (target ≥ {THROUGHPUT_TARGET}: {met})"
        if sc.latency is None:
            line += f", **{cpu:.2f}×** CPU per URL (target ≤ {CPU_TARGET}: {'met' if cpu <= CPU_TARGET else 'missed'})"
        else:
            line += f", {cpu:.2f}× CPU per URL"
        lines.append(line)
    if split is not None:
        lines.append(
            f"- {sc.label}: {SPLIT_PARTS} independent fetchpools, each on 1/{SPLIT_PARTS} of the list, reach "
            f"{split['rate'] / threads['rate']:.2f}× threads at {split['cpu'] / threads['cpu']:.2f}× its CPU per URL "
            "(the reference: no parent scheduling, IPC or writing)"
        )
    return lines


def _ray_lines(scenarios: list[Scenario], records: list[RunRecord], startup: dict[str, float]) -> list[str]:
    if "fetchpool-ray" not in startup or "fetchpool" not in startup:
        return []
    cost = startup["fetchpool-ray"] - startup["fetchpool"]
    lines = [
        f"- Ray start-up: a one-URL run takes {1000 * startup['fetchpool-ray']:,.0f} ms on Ray against "
        f"{1000 * startup['fetchpool']:,.0f} ms on threads: **{cost:.2f} s** to start and stop a local cluster."
    ]
    for sc in scenarios:
        ray, threads = medians(records, sc.key, "fetchpool-ray"), medians(records, sc.key, "fetchpool")
        if ray is None or threads is None:
            continue
        busy = ray["wall"] - cost
        after = f"{ray['urls'] / busy:,.0f} URLs/s once started" if busy > 0 else "start-up took the whole run"
        lines.append(
            f"- {sc.label}: Ray {ray['rate']:,.0f} URLs/s with start-up ({ray['rate'] / threads['rate']:.2f}× threads), "
            f"{after}."
        )
    return lines


def section(
    records: list[RunRecord], scenarios: list[Scenario], tools: list[Tool], startup: dict[str, float], notes: list[str]
) -> str:
    rows = [
        "| scenario | engine | URLs/s (median) | × threads | CPU ms/URL, all processes | × threads | processes "
        "| peak RSS MB, sum | % of K/latency limit | start-up ms | checks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines: list[str] = []
    for sc in (s for s in scenarios if s.sample):
        med = {t.name: v for t in rows_of(tools) if (v := medians(records, sc.key, t.name)) is not None}
        threads = med.get("fetchpool")
        for name, v in med.items():
            engine = next(t.engine for t in tools if t.name == name)
            speed = f"{v['rate'] / threads['rate']:.2f}" if threads else "n/a"
            cpu = f"{v['cpu'] / threads['cpu']:.2f}" if threads else "n/a"
            limit = f"{100 * v['rate'] / sc.limit:.0f}%" if sc.limit else "—"
            start = f"{1000 * startup[name]:,.0f}" if name in startup else "—"
            rows.append(
                f"| {sc.label} | {engine} | {v['rate']:,.0f} | {speed} | {v['cpu']:.3f} | {cpu} | {v['processes']:.0f} "
                f"| {v['group_rss']:.1f} | {limit} | {start} | {checks_cell(v)} |"
            )
        lines += _targets(sc, med)
    lines += _ray_lines([s for s in scenarios if s.sample], records, startup)
    for line in lines:
        log(line.replace("**", ""))
    text = "\n".join(rows)
    if lines:
        text += "\n\n" + "\n".join(lines)
    if notes:
        text += "\n\n" + "\n".join(f"- {note}" for note in notes)
    return text + "\n\n" + NOTES


NOTES = """\
The split reference runs P = nproc independent `fetchpool -c K/P --json` processes, each on 1/P of the list (GNU
`split -n l/P`), their records appended to one file: it is what P processes reach with nothing shared. threads is the
`fetchpool` row of the throughput table (`--engine threads` when the flag exists). "processes" is
the number of distinct processes seen in the run's process group by sampling /proc every 0.25 s (GNU time's own
process not counted), and "peak RSS MB, sum" the largest sum of their RSS at one sample; both are sampled, so a
process that lives less than a sample apart may be missed. CPU per URL is exact: user+sys of every process of the
run. Start-up is the median wall time of a one-URL run on each engine (alternated); Ray's figure includes starting
and stopping a local cluster, which every `--engine ray` run without `--ray-address` pays."""
