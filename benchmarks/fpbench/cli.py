"""`python benchmarks/run.py`: flags, the order of the parts, and the results files."""

from __future__ import annotations

import argparse
import atexit
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .checks import read_outcome
from .measuring import GNU_TIME, measure
from .procs import ANOMALIES, HERE, become_subreaper, cleanup, log, loud, on_sigterm, tail
from .report import build_report, machine_info
from .rounds import run_rounds
from .scenarios import engines, latency, live, memory, startup, throughput
from .source import editable_note, fetchpool_from_ref, find_fetchpool, working_tree_state
from .targets import Servers, Targets, self_check
from .tools import ALL_TOOLS, Engines, Tool, detect_engines, make_tools, records_tool

PARTS = ("throughput", "live", "memory", "startup")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="fetchpool benchmark against local nginx (see benchmarks/README.md)")
    p.add_argument("--quick", action="store_true", help="small lists, 1 run per tool: finishes in a minute or two")
    p.add_argument("--throughput", action="store_true", help="run the throughput scenarios (default: all parts)")
    p.add_argument("--memory", action="store_true", help="run the streaming-input memory scenario")
    p.add_argument("--startup", action="store_true", help="run the startup-time scenario")
    p.add_argument(
        "--live",
        action="store_true",
        help="run the live-view overhead scenario (live terminal view vs --json to a file)",
    )
    p.add_argument("--urls", type=int, help="URLs per throughput list (default 20000; 2000 with --quick)")
    p.add_argument("--runs", type=int, help="runs per tool and scenario, medians taken (default 3; 1 with --quick)")
    p.add_argument("--tools", default=",".join(ALL_TOOLS), help=f"comma list from {','.join(ALL_TOOLS)}")
    p.add_argument(
        "--scenarios",
        help="comma list of throughput scenarios (default all: 1k-k16,1k-k64,sleep-k64,sleep-k256)",
    )
    p.add_argument(
        "--engine-args",
        default="",
        metavar="ARGS",
        help="extra fetchpool flags for the processes and Ray variants, e.g. '--processes 2'",
    )
    p.add_argument(
        "--install-aiohttp",
        action="store_true",
        help="pip-install aiohttp into fetchpool's venv if missing (benchmark only, not a fetchpool dependency)",
    )
    p.add_argument(
        "--server", choices=("auto", "nginx", "python"), default="auto", help="target server (auto: nginx if installed)"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="markdown results file (default benchmarks/results.md; results-quick.md etc. for partial runs)",
    )
    p.add_argument("--fetchpool", metavar="PATH", help="fetchpool executable to benchmark (default: the venv's)")
    p.add_argument("--ref", metavar="GITREF", help="benchmark fetchpool as committed at GITREF (git archive snapshot)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (URL lists, outputs, nginx config)")
    args = p.parse_args(argv)
    if not any(getattr(args, part) for part in PARTS):
        args.throughput = args.memory = args.startup = args.live = True
    args.urls = args.urls or (2000 if args.quick else 20000)
    args.runs = args.runs or (1 if args.quick else 3)
    if args.output is None:
        parts = [n for n in PARTS if getattr(args, n)]
        tag = "quick" if args.quick else ("" if len(parts) == 4 else "-".join(parts))
        args.output = HERE / (f"results-{tag}.md" if tag else "results.md")
    return args


@dataclass
class Bench:
    """What every part of one benchmark run shares."""

    args: argparse.Namespace
    fetchpool: str
    source: str
    python: str
    tools: list[Tool]
    engines: Engines
    targets: Targets
    work: Path
    outdir: Path
    sections: list[tuple[str, str]] = field(default_factory=list)
    raw: dict[str, object] = field(default_factory=dict)

    @property
    def runs_note(self) -> str:
        runs = self.args.runs
        note = f"{runs} run{'s' if runs > 1 else ''} per tool per scenario"
        return note + (" — fewer than 3, so these are single samples, not medians" if runs < 3 else "")

    def add(self, title: str, text: str) -> None:
        print("\n" + text + "\n", flush=True)
        self.sections.append((title, text))


def preflight(fetchpool: str, targets: Targets, work: Path) -> None:
    """One URL through fetchpool before anything is timed: a broken build fails fast and clearly."""
    one = work / "preflight.txt"
    one.write_text(targets.url("1k", 0) + "\n")
    out, err = work / "preflight.out", work / "preflight.err"
    m = measure([fetchpool, "--json", str(one)], timeout=60, stdout=out, stderr=err)
    outcome = read_outcome(records_tool(), out)
    if m.returncode != 0 or outcome.records != 1 or set(outcome.statuses) != {"200"}:
        raise SystemExit(
            f"run.py: fetchpool ({fetchpool}) failed on one local URL: exit {m.returncode}, "
            f"{outcome.records} records {dict(outcome.statuses)} {outcome.details}\n{tail(err, 8)}\n"
            "Is the working tree mid-edit? Try `--ref HEAD~1` (or any commit) to benchmark a committed snapshot."
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    # A shell starts background jobs with SIGINT ignored; we still want Ctrl-C / kill -INT to clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    atexit.register(cleanup)
    if not become_subreaper():
        log("run.py: could not become a child subreaper: CPU of processes orphaned during a run is not counted")
    tmp = Path(tempfile.mkdtemp(prefix="fetchpool-bench-"))
    try:
        code = _run(args, tmp)
    except KeyboardInterrupt:
        log("interrupted: stopping servers and tools")
        return 130
    finally:
        cleanup()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if ANOMALIES:
        log(f"\n{len(ANOMALIES)} anomal{'y' if len(ANOMALIES) == 1 else 'ies'}:")
        for a in ANOMALIES:
            log(f" - {a}")
        return 1
    return code


def _fetchpool(args: argparse.Namespace, tmp: Path) -> tuple[str, str, str]:
    """(fetchpool executable, where it comes from, the Python of its environment)."""
    if args.ref:
        return fetchpool_from_ref(args.ref, tmp)
    if args.fetchpool:
        return str(Path(args.fetchpool).resolve()), f"{args.fetchpool} (given with --fetchpool)", sys.executable
    return find_fetchpool(), working_tree_state() + editable_note(), sys.executable


def _run(args: argparse.Namespace, tmp: Path) -> int:
    fetchpool, source, python = _fetchpool(args, tmp)
    log(f"fetchpool: {fetchpool} ({source})")
    if GNU_TIME is None:
        loud(
            "GNU time not found (apt-get install time): peak RSS falls back to plain wait4, which includes "
            "this runner's own ~25+ MB RSS as a floor under every tool (see measure())"
        )
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(wanted) - set(ALL_TOOLS)
    if unknown:
        raise SystemExit(f"run.py: unknown tools {sorted(unknown)}; choose from {ALL_TOOLS}")
    found = detect_engines(fetchpool, python)
    for note in found.notes:
        log(f"note: {note}")
    tools, versions = make_tools(fetchpool, wanted, python, found, args.install_aiohttp, shlex.split(args.engine_args))
    versions["fetchpool source"] = source
    info = machine_info()
    started = time.monotonic()
    targets = Servers(tmp, args.server).start()
    versions.update(targets.versions)
    self_check(targets)
    log(f"targets: {targets.description} at {targets.static_base} (temp {tmp})")
    preflight(fetchpool, targets, tmp)
    outdir = HERE / "out"
    outdir.mkdir(exist_ok=True)
    bench = Bench(args, fetchpool, source, python, tools, found, targets, tmp, outdir)
    bench.raw.update(info=info, versions=versions, args={k: str(v) for k, v in vars(args).items()})
    for part, run_part in (("throughput", _throughput), ("live", _live), ("memory", _memory), ("startup", _startup)):
        if getattr(args, part):
            run_part(bench)
    report = build_report(args, info, versions, targets, bench.sections)
    args.output.write_text(report + f"\nTotal benchmark time: {time.monotonic() - started:.0f} s.\n")
    bench.raw["anomalies"] = ANOMALIES
    (outdir / f"{args.output.stem}.json").write_text(json.dumps(bench.raw, indent=1, default=str))
    log(f"wrote {args.output} and {outdir / (args.output.stem + '.json')} in {time.monotonic() - started:.0f} s")
    return 0


def _throughput(bench: Bench) -> None:
    args = bench.args
    n = args.urls
    every = [*throughput.scenarios(n), latency.scenario(n)]
    keys = [k.strip() for k in (args.scenarios or "").split(",") if k.strip()]
    unknown = set(keys) - {sc.key for sc in every}
    if unknown:
        raise SystemExit(f"run.py: unknown scenarios {sorted(unknown)}; choose from {[sc.key for sc in every]}")
    chosen = [sc for sc in every if not keys or sc.key in keys]
    records = run_rounds(bench.targets, bench.tools, chosen, args.runs, bench.work)
    table = throughput.table(records, chosen, bench.tools)
    bench.add(f"Throughput ({n:,} URLs per list, {bench.runs_note})", table + "\n\n" + throughput.NOTES)
    bench.raw["throughput"] = [asdict(r) for r in records]
    for sc in chosen:
        if sc.key == latency.scenario(n).key:
            log(latency.fractions(records, sc, bench.tools))
            bench.add(
                f"Latency-bound at K={latency.K} ({n:,} URLs, {bench.runs_note})",
                latency.section(records, sc, bench.tools),
            )
    if any(sc.sample for sc in chosen):
        startup_s: dict[str, float] = {}
        if len(engines.engine_tools(bench.tools)) > 1:
            startup_s = engines.run_startup(bench.targets, bench.tools, 3 if args.quick else 5, bench.work)
        text = engines.section(records, chosen, bench.tools, startup_s, bench.engines.notes)
        bench.add(f"fetchpool engines side by side ({bench.runs_note})", text)
        bench.raw["engine_startup_s"] = startup_s


def _live(bench: Bench) -> None:
    args = bench.args
    summary, typescript, records = live.run_live(bench.targets, bench.fetchpool, args.urls, args.runs, bench.work)
    typescript_name = f"{args.output.stem}-live.typescript"
    (bench.outdir / typescript_name).write_bytes(typescript)
    note = bench.runs_note.replace("tool", "variant")
    bench.add(
        f"Live view overhead ({args.urls:,} URLs, 1 KiB, K={live.LIVE_K}, {note})",
        live.live_section(summary, typescript_name),
    )
    bench.raw["live"] = {**summary, "runs": [asdict(r) for r in records]}


def _memory(bench: Bench) -> None:
    full, pipe_lines, seconds = (5_000, 1_000_000, 5.0) if bench.args.quick else (100_000, 1_000_000, 60.0)
    mem = memory.run_memory(bench.targets, bench.fetchpool, full, pipe_lines, seconds, bench.work)
    bench.add("Memory: streaming stdin (fetchpool only)", memory.memory_section(mem) + "\n\n" + memory.MEMORY_NOTES)
    bench.raw["memory"] = mem


def _startup(bench: Bench) -> None:
    reps = 3 if bench.args.quick else 10
    rows = startup.run_startup(bench.targets, bench.fetchpool, reps, bench.work, bench.python)
    text = startup.startup_table(rows, reps) + "\n\n" + startup.startup_notes(bench.source, bench.python)
    bench.add("Startup", text)
    bench.raw["startup"] = rows
