"""Throughput scenarios: every tool on the same URL lists, alternated run by run, medians of the runs."""

from __future__ import annotations

from ..rounds import RunRecord, Scenario, checks_cell, medians, ratio
from ..targets import SLEEP_SECONDS
from ..tools import ALL_TOOLS, Tool


def scenarios(n: int) -> list[Scenario]:
    """The CPU-bound pair and the K=64 latency-bound one; 1 KiB at K=64 also has the peers and engines."""
    return [
        Scenario("1k-k16", "1 KiB, K=16 (CPU-bound)", "1k", 16, n),
        Scenario("1k-k64", "1 KiB, K=64 (CPU-bound)", "1k", 64, n, tools=ALL_TOOLS, sample=True),
        Scenario("sleep-k64", "50 ms echo_sleep, K=64 (latency-bound)", "sleep", 64, n, SLEEP_SECONDS),
    ]


def table(records: list[RunRecord], scenarios: list[Scenario], tools: list[Tool]) -> str:
    rows = [
        "| scenario | tool | URLs/s (median) | × baseline | × curl | CPU ms/URL | peak RSS MB | % of K/latency limit "
        "| checks | other load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for sc in scenarios:
        med = {t.name: v for t in tools if (v := medians(records, sc.key, t.name)) is not None}
        base = med.get("baseline", {}).get("rate")
        curl = med.get("curl-parallel", {}).get("rate")
        for name, v in med.items():
            limit = f"{100 * v['rate'] / sc.limit:.0f}%" if sc.limit else "—"
            rows.append(
                f"| {sc.label} | {name} | {v['rate']:,.0f} | {ratio(v['rate'], base)} | {ratio(v['rate'], curl)} "
                f"| {v['cpu']:.3f} | {v['rss']:.1f} | {limit} | {checks_cell(v)} | {v['other']:.0f}% |"
            )
    return "\n".join(rows)


NOTES = """\
URLs/s is the median over runs of URLs ÷ wall time (process start to exit, including interpreter
start-up). CPU ms/URL is the median of (user+sys of the tool process and all its children, from
`os.wait4`, plus any process of the run orphaned on the way, which the runner reaps as a subreaper) ÷ URLs.
Peak RSS is the largest `ru_maxrss` over runs: for xargs-curl and fetchpool's processes engine that is the
largest single process, not a sum (the engines section has the sum). × baseline / × curl divide by the
baseline_threadpool.py and curl --parallel medians of the same scenario. Tools run alternately (A B C D A B C D …)
on the same URL list; every run must give exactly one 200 per URL, exit 0 and leave no process running, else its
row is marked ⚠. The nginx worker shares the 2 cores with the client under test. For the latency-bound rows, the
limit is K ÷ 50 ms = K × 20 URLs/s. "other load" is the median share of the whole machine's CPU (all cores)
used during the runs by processes that were neither the tool nor the server (from /proc/stat): when it is
more than a few %, something else competed for the cores and absolute numbers are pessimistic."""
