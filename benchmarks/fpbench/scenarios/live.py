"""Live-view overhead: fetchpool drawing its live view on a pty against --json into a file."""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from ..checks import Outcome, check, read_outcome
from ..measuring import NCPU, Measurement, measure
from ..procs import child_env, log, loud
from ..rounds import RunRecord, run_timeout, write_url_list
from ..targets import Targets
from ..terminal import Terminal
from ..tools import records_tool

LIVE_K = 16
LIVE_COLUMNS, LIVE_ROWS = 120, 40
LIVE_SCREEN_LINES = 45
LIVE_TARGET = 0.95  # the live view may cost at most 5% of the throughput
LIVE_VARIANTS = ("json-to-file", "live-view")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def live_env() -> dict[str, str]:
    """A person's terminal: colours on, size only from the pty (TIOCGWINSZ), not the environment."""
    env = child_env()
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    env["TERM"] = "xterm-256color"
    return env


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def render_screen(data: bytes, columns: int, rows: int, keep: int) -> tuple[str, str]:
    """The last `keep` lines a person would see after the run (screen plus scrollback).

    With pyte (optional: `pip install pyte`), the bytes are played through a terminal
    emulator of the pty's size, so the live view's redraws collapse to what stayed on the
    screen. Without it, escape sequences are stripped and each line keeps what followed its
    last carriage return: readable, but every redrawn frame of the live view remains.
    """
    try:
        import pyte
    except ImportError:
        lines = []
        for line in strip_ansi(data.decode("utf-8", "replace")).split("\n"):
            parts = [part for part in line.split("\r") if part.strip()]
            lines.append(parts[-1].rstrip() if parts else "")
        how = "escape sequences stripped (pyte is not installed; `pip install pyte` renders the real screen)"
    else:
        from importlib.metadata import version as dist_version

        screen = pyte.HistoryScreen(columns, rows, history=max(1000, 4 * keep), ratio=0.5)
        pyte.ByteStream(screen).feed(data)

        def text(line: Any) -> str:
            return "".join(line[x].data for x in range(columns)).rstrip()

        lines = [text(line) for line in screen.history.top] + [text(screen.buffer[y]) for y in range(rows)]
        how = f"rendered by pyte {dist_version('pyte')} as a {columns}×{rows} terminal, scrollback included"
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines[-keep:]), how


def run_live(
    targets: Targets, fetchpool: str, n: int, runs: int, work: Path
) -> tuple[dict[str, Any], bytes, list[RunRecord]]:
    """Throughput with the live terminal view against plain JSON lines into a file.

    json-to-file: `fetchpool -c K --json URLS > FILE` (no terminal anywhere: no view at all).
    live-view:    `fetchpool -c K -o FILE.jsonl URLS` with stdout and stderr a 120x40 pty,
                  so the full live view is drawn while the records still go to FILE.
    Alternated A B A B ..., every run checked (exit 0, one 200 record per URL).
    Returns the summary, the typescript of the last live run, and the per-run records.
    """
    tool = records_tool()
    env = live_env()
    typescript = b""

    def one(variant: str, label: str, urls: Path, count: int) -> tuple[Measurement, bool, Outcome, bytes]:
        if variant == "json-to-file":
            out, err = work / "live-json.out", work / "live-json.err"
            for p in (out, err):
                p.unlink(missing_ok=True)
            argv = [fetchpool, "-c", str(LIVE_K), "--json", str(urls)]
            m = measure(argv, timeout=run_timeout(count), stdout=out, stderr=err)
            data = b""
        else:
            out, err = work / "live-records.jsonl", work / "live-tty.txt"  # .jsonl: JSON lines by -o's name
            for p in (out, err):
                p.unlink(missing_ok=True)
            term = Terminal(LIVE_COLUMNS, LIVE_ROWS)
            argv = [fetchpool, "-c", str(LIVE_K), "-o", str(out), str(urls)]
            m = measure(argv, timeout=run_timeout(count), terminal=term, env=env)
            data = term.finish()
            err.write_text(strip_ansi(data.decode("utf-8", "replace")))
        outcome = read_outcome(tool, out)
        ok = check(tool, f"{label} {variant}", count, m, outcome, err)
        if variant == "live-view" and ok and b"\x1b[" not in data:
            loud(
                f"{label} live-view: the terminal received no escape sequences ({len(data)} bytes): no live view drawn?"
            )
            ok = False
        return m, ok, outcome, data

    warm, _ = write_url_list(targets, "1k", 200, work)
    log("live view: warm-up, each variant once on 200 URLs (not recorded)")
    for variant in LIVE_VARIANTS:
        one(variant, "live warm-up", warm, 200)
    urls, _ = write_url_list(targets, "1k", n, work)
    records: list[RunRecord] = []
    tty_bytes: dict[int, int] = {}
    for rnd in range(1, runs + 1):
        for variant in LIVE_VARIANTS:
            m, ok, outcome, data = one(variant, "live view", urls, n)
            if data:
                typescript = data
                tty_bytes[rnd] = len(data)
            log(
                f"[live view, 1 KiB, K={LIVE_K}] round {rnd}/{runs} {variant:12s} {m.wall:7.2f}s {n / m.wall:8.0f} URL/s "
                f"cpu {1000 * m.cpu / n:6.3f} ms/URL other {100 * m.other_cpu / (m.wall * NCPU):3.0f}% "
                + (f"tty {len(data) / 1024:,.0f} KiB " if data else "")
                + ("ok" if ok else "FAILED")
            )
            records.append(RunRecord.of("live-1k-k16", variant, rnd, n, m, ok, outcome))
    summary: dict[str, Any] = {"urls": n, "k": LIVE_K, "runs": runs, "columns": LIVE_COLUMNS, "rows": LIVE_ROWS}
    for variant in LIVE_VARIANTS:
        mine = [r for r in records if r.tool == variant]
        summary[variant] = {
            "rate": statistics.median(r.urls / r.wall for r in mine),
            "cpu_ms_per_url": statistics.median(1000 * r.cpu / r.urls for r in mine),
            "peak_rss_mb": max(r.maxrss_kb for r in mine) / 1024,
            "other_load_pct": statistics.median(100 * r.other_cpu / (r.wall * NCPU) for r in mine),
            "ok": sum(r.ok for r in mine),
            "n": len(mine),
            "rates": [round(r.urls / r.wall) for r in mine],
        }
    json_runs = {r.round: r for r in records if r.tool == "json-to-file"}
    summary["paired_ratios"] = [
        round((r.urls / r.wall) / (json_runs[r.round].urls / json_runs[r.round].wall), 3)
        for r in records
        if r.tool == "live-view"
    ]
    summary["tty_bytes"] = statistics.median(tty_bytes.values()) if tty_bytes else 0
    json_s, live_s = summary["json-to-file"], summary["live-view"]
    summary["ratio"] = live_s["rate"] / json_s["rate"]
    summary["cpu_ratio"] = live_s["cpu_ms_per_url"] / json_s["cpu_ms_per_url"]
    summary["target_met"] = summary["ratio"] >= LIVE_TARGET
    screen, how = render_screen(typescript, LIVE_COLUMNS, LIVE_ROWS, LIVE_SCREEN_LINES)
    summary["screen"] = screen
    summary["screen_how"] = how
    log(
        f"live view: live ÷ json throughput {summary['ratio']:.3f} (target ≥ {LIVE_TARGET}: "
        f"{'met' if summary['target_met'] else 'MISSED'}), CPU/URL ×{summary['cpu_ratio']:.2f}"
    )
    return summary, typescript, records


def live_section(live: dict[str, Any], typescript_name: str) -> str:
    json_s, live_s = live["json-to-file"], live["live-view"]
    ratio = live["ratio"]
    k, n = live["k"], live["urls"]

    def checks(v: dict[str, Any]) -> str:
        return f"{v['ok']}/{v['n']} ok" if v["ok"] == v["n"] else f"⚠ {v['ok']}/{v['n']} ok"

    rows = [
        "| variant | command | URLs/s (median) | × json-to-file | CPU ms/URL | peak RSS MB | terminal output "
        "| checks | other load |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
        f"| json-to-file | `fetchpool -c {k} --json URLS > FILE` (no terminal) | {json_s['rate']:,.0f} | 1.000 "
        f"| {json_s['cpu_ms_per_url']:.3f} | {json_s['peak_rss_mb']:.1f} | — | {checks(json_s)} "
        f"| {json_s['other_load_pct']:.0f}% |",
        f"| live-view | `fetchpool -c {k} -o FILE.jsonl URLS` on a {live['columns']}×{live['rows']} pty "
        f"| {live_s['rate']:,.0f} | {ratio:.3f} | {live_s['cpu_ms_per_url']:.3f} | {live_s['peak_rss_mb']:.1f} "
        f"| {live['tty_bytes'] / 1024:,.0f} KiB | {checks(live_s)} | {live_s['other_load_pct']:.0f}% |",
    ]
    if ratio >= 1:
        verdict = "✅ met (the live runs were not slower)"
    elif live["target_met"]:
        verdict = f"✅ met (the live view costs {100 * (1 - ratio):.1f}% of the throughput)"
    else:
        verdict = f"⚠ missed: the live view costs {100 * (1 - ratio):.1f}% of the throughput"
    lines = [
        *rows,
        "",
        f"**Live ÷ json throughput: {ratio:.3f}** (ratio of the medians; per round: "
        + ", ".join(f"{x:.3f}" for x in live["paired_ratios"])
        + f") — target ≥ {LIVE_TARGET:.2f}: {verdict}.",
        "",
        f"CPU per URL: live view {live_s['cpu_ms_per_url']:.3f} ms, json-to-file {json_s['cpu_ms_per_url']:.3f} ms "
        f"(× {live['cpu_ratio']:.3f}). URLs/s per run: json-to-file "
        + ", ".join(f"{x:,}" for x in json_s["rates"])
        + "; live-view "
        + ", ".join(f"{x:,}" for x in live_s["rates"])
        + ".",
        "",
        LIVE_NOTES.format(n=n, k=k),
        "",
        f"### Final screen of the last live run (last {LIVE_SCREEN_LINES} lines at most)",
        "",
        f"What the pty received, {live['screen_how']}; the raw typescript is kept in `benchmarks/out/{typescript_name}`.",
        "",
        "```text",
        str(live["screen"]),
        "```",
    ]
    return "\n".join(lines)


LIVE_NOTES = """\
Both variants fetch the same {n:,} URL list (1 KiB nginx file, CPU-bound, `-c {k}`), alternated run by run
(json, live, json, live, …) after one warm-up of each. json-to-file has no terminal at all (stdout and stderr are
files), so no view of any kind is drawn. live-view runs with stdout and stderr on a pseudo-terminal (`pty.openpty`,
window size set with TIOCSWINSZ, `TERM=xterm-256color`, no `NO_COLOR`/`COLUMNS`/`LINES`), which is what a person
at a terminal gets: the full live view on stdout while `-o` writes the records, as JSON lines (the name ends in
`.jsonl`), which are read back and checked like the json run's stdout. A thread in the runner drains the pty all the
time (a terminal that never reads would block the view); that is the stand-in for a terminal emulator, and its CPU
is counted in "other load", not in the tool's CPU. Peak RSS is GNU time's `%M` as above."""
