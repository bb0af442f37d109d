"""Latency-bound at K=256: the limit is 5,120 URLs/s, more than one core of Python can feed.

Against a target that answers after 50 ms, K requests in flight allow K / 50 ms URLs/s
whatever the client; the question is which share of that limit each tool reaches when
the limit is high enough that the client's CPU, not the target, is the bottleneck.
"""

from __future__ import annotations

from ..rounds import RunRecord, Scenario, checks_cell, medians
from ..targets import SLEEP_SECONDS
from ..tools import ALL_TOOLS, Tool

K = 256


def scenario(n: int) -> Scenario:
    label = f"50 ms echo_sleep, K={K}, limit {K / SLEEP_SECONDS:,.0f}/s (latency-bound)"
    return Scenario(f"sleep-k{K}", label, "sleep", K, n, SLEEP_SECONDS, tools=ALL_TOOLS, sample=True)


def section(records: list[RunRecord], sc: Scenario, tools: list[Tool]) -> str:
    """The fraction of the limit each tool reached (medians), best first."""
    assert sc.limit is not None
    med = {t.name: v for t in tools if (v := medians(records, sc.key, t.name)) is not None}
    rows = [
        f"| tool | URLs/s (median) | fraction of the {sc.limit:,.0f} URLs/s limit | CPU ms/URL | checks |",
        "|---|---:|---:|---:|---|",
    ]
    for name, v in sorted(med.items(), key=lambda item: -item[1]["rate"]):
        rows.append(f"| {name} | {v['rate']:,.0f} | {v['rate'] / sc.limit:.2f} | {v['cpu']:.3f} | {checks_cell(v)} |")
    return "\n".join(rows) + "\n\n" + NOTES.format(k=K, limit=sc.limit, n=sc.urls)


def fractions(records: list[RunRecord], sc: Scenario, tools: list[Tool]) -> str:
    """One line for the log: each tool's fraction of the limit."""
    assert sc.limit is not None
    parts = [
        f"{t.name} {v['rate'] / sc.limit:.2f}" for t in tools if (v := medians(records, sc.key, t.name)) is not None
    ]
    return f"fraction of the {sc.limit:,.0f} URLs/s limit reached: " + ", ".join(parts)


NOTES = """\
{n:,} distinct URLs on nginx's `echo_sleep 0.05` location, `-c {k}` (or the tool's own K), so the limit set by
concurrency is {k} ÷ 50 ms = {limit:,.0f} URLs/s. A tool that reaches about 1.0 is held back by the target's latency
only; one well below it is held back by its own CPU (on this 2-core machine, which nginx shares). This is the shape of
a real crawl at `-c 512` against servers 200 ms away, scaled down to what a loopback target can serve."""
