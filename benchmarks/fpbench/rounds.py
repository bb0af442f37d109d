"""The shared runner: tools take turns on one URL list, run by run; every run is checked and kept as one row.

A scenario is data (a path on the target, K, a list size, which tools take part); the
rounds, the checks and the medians are the same for all of them, so a new scenario is a
`Scenario` and, if it reports something of its own, a small section built from the rows.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from .checks import Outcome, check, read_outcome
from .measuring import NCPU, Measurement, measure
from .procs import log
from .targets import Targets
from .tools import CLASSIC_TOOLS, Tool


@dataclass
class Scenario:
    key: str
    label: str
    path: str
    k: int
    urls: int
    latency: float | None = None
    tools: tuple[str, ...] = CLASSIC_TOOLS  # which tools take part (they take turns in the order of --tools)
    sample: bool = False  # count each run's processes and their summed RSS (engine comparisons)

    @property
    def limit(self) -> float | None:
        """URLs/s that K requests in flight allow against a target that answers after `latency`."""
        return self.k / self.latency if self.latency else None


@dataclass
class RunRecord:
    scenario: str
    tool: str
    round: int
    urls: int
    wall: float
    cpu: float
    maxrss_kb: int
    returncode: int
    ok: bool
    statuses: dict[str, int]
    server_cpu: float = 0.0
    other_cpu: float = 0.0
    processes: int = 0
    group_rss_kb: int = 0

    @classmethod
    def of(cls, scenario: str, tool: str, rnd: int, urls: int, m: Measurement, ok: bool, outcome: Outcome) -> RunRecord:
        """One run's row, from its measurement and the records it gave."""
        return cls(
            scenario,
            tool,
            rnd,
            urls,
            m.wall,
            m.cpu,
            m.maxrss_kb,
            m.returncode,
            ok,
            dict(outcome.statuses),
            m.server_cpu,
            m.other_cpu,
            m.processes,
            m.group_rss_kb,
        )


def write_url_list(targets: Targets, path_name: str, n: int, where: Path) -> tuple[Path, Path]:
    """URL file (one per line, distinct query strings) and the matching curl -K config."""
    urls = where / f"urls-{path_name}-{n}.txt"
    cfg = where / f"curl-{path_name}-{n}.cfg"
    with open(urls, "w") as fu, open(cfg, "w") as fc:
        for i in range(n):
            url = targets.url(path_name, i)
            fu.write(url + "\n")
            fc.write(f'url = "{url}"\noutput = "/dev/null"\n')
    return urls, cfg


def run_timeout(n: int) -> float:
    return 60 + n / 100


RAY_GRACE = 120.0  # more time for a run that starts (and stops) a local Ray cluster first


def run_tool(
    tool: Tool, label: str, urls: Path, cfg: Path, k: int, n: int, work: Path, sample: bool = False
) -> tuple[Measurement, bool, Outcome]:
    out_path = work / f"out-{tool.name}.txt"
    err_path = work / f"err-{tool.name}.txt"
    for p in (out_path, err_path):
        p.unlink(missing_ok=True)
    stdin = urls if tool.urls_on_stdin else None
    timeout = run_timeout(n) + (RAY_GRACE if tool.engine == "ray" else 0)
    m = measure(tool.argv(urls, cfg, k), timeout=timeout, stdin=stdin, stdout=out_path, stderr=err_path, sample=sample)
    outcome = read_outcome(tool, err_path if tool.result_stream == "stderr" else out_path)
    ok = check(tool, label, n, m, outcome, err_path)
    return m, ok, outcome


def taking_part(tools: list[Tool], sc: Scenario) -> list[Tool]:
    return [tool for tool in tools if tool.name in sc.tools]


def run_rounds(
    targets: Targets, tools: list[Tool], scenarios: list[Scenario], runs: int, work: Path
) -> list[RunRecord]:
    """Warm every tool once, then per scenario run A B C D A B C D ... `runs` rounds."""
    records: list[RunRecord] = []
    warm_urls, warm_cfg = write_url_list(targets, "1k", 200, work)
    log("warm-up: every tool once on 200 URLs (not recorded)")
    for tool in tools:
        if any(tool.name in sc.tools for sc in scenarios):
            run_tool(tool, "warm-up", warm_urls, warm_cfg, 16, 200, work)
    for sc in scenarios:
        urls, cfg = write_url_list(targets, sc.path, sc.urls, work)
        for rnd in range(1, runs + 1):
            for tool in taking_part(tools, sc):
                m, ok, outcome = run_tool(tool, sc.label, urls, cfg, sc.k, sc.urls, work, sc.sample)
                rate = sc.urls / m.wall
                log(
                    f"[{sc.label}] round {rnd}/{runs} {tool.name:19s} {m.wall:7.2f}s {rate:8.0f} URL/s "
                    f"cpu {1000 * m.cpu / sc.urls:6.3f} ms/URL rss {m.maxrss_kb / 1024:6.1f} MB "
                    + (f"procs {m.processes} group rss {m.group_rss_kb / 1024:6.1f} MB " if sc.sample else "")
                    + f"other {100 * m.other_cpu / (m.wall * NCPU):3.0f}% {'ok' if ok else 'FAILED'}"
                )
                records.append(RunRecord.of(sc.key, tool.name, rnd, sc.urls, m, ok, outcome))
    return records


def medians(records: list[RunRecord], scenario: str, tool: str) -> dict[str, float] | None:
    """The medians of one tool's runs in one scenario (None if it did not run there)."""
    mine = [r for r in records if r.scenario == scenario and r.tool == tool]
    if not mine:
        return None
    return {
        "rate": statistics.median(r.urls / r.wall for r in mine),
        "wall": statistics.median(r.wall for r in mine),
        "cpu": statistics.median(1000 * r.cpu / r.urls for r in mine),
        "rss": max(r.maxrss_kb for r in mine) / 1024,
        "ok": sum(r.ok for r in mine),
        "n": len(mine),
        "other": statistics.median(100 * r.other_cpu / (r.wall * NCPU) for r in mine),
        "processes": max(r.processes for r in mine),
        "group_rss": max(r.group_rss_kb for r in mine) / 1024,
        "urls": mine[0].urls,
    }


def checks_cell(v: dict[str, float]) -> str:
    ok, n = int(v["ok"]), int(v["n"])
    return f"{ok}/{n} ok" if ok == n else f"⚠ {ok}/{n} ok"


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else "n/a"
