"""Memory while streaming stdin: one complete run and one long pipe cut short."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..checks import check, read_outcome
from ..measuring import measure, proc_status_kb
from ..procs import GROUPS, child_env, kill_group, log, loud, tail
from ..rounds import run_timeout
from ..targets import Targets
from ..tools import records_tool


def _url_lines(targets: Targets, n: int, chunk: int = 2000) -> Iterator[bytes]:
    for start in range(0, n, chunk):
        yield "".join(targets.url("1k", i) + "\n" for i in range(start, min(n, start + chunk))).encode()


def run_memory(
    targets: Targets, fetchpool: str, full_urls: int, pipe_lines: int, pipe_seconds: float, work: Path
) -> dict[str, object]:
    """Peak RSS of fetchpool streaming stdin: one complete run, one long pipe cut short.

    (a) `full_urls` real URLs on stdin, fetched completely: peak RSS from wait4, every record checked.
    (b) `pipe_lines` URL lines generated into a pipe; fetchpool fetches for `pipe_seconds`, we sample
        /proc/PID/status (VmHWM, VmRSS) and then SIGTERM it. Fetching a million URLs at a few
        thousand per second would take minutes, so (b) measures whether memory grows with input
        consumed, not a finished run. A reader that slurped stdin would show it at once.
    """
    k = 64
    result: dict[str, object] = {"k": k}
    urls = work / f"mem-urls-{full_urls}.txt"
    with open(urls, "wb") as f:
        for chunk in _url_lines(targets, full_urls):
            f.write(chunk)
    out = work / "mem-out.jsonl"
    err = work / "mem-err.txt"
    log(f"memory (a): {full_urls:,} URLs on stdin, -c {k}, fetched fully")
    m = measure([fetchpool, "-c", str(k), "--json"], timeout=run_timeout(full_urls), stdin=urls, stdout=out, stderr=err)
    outcome = read_outcome(records_tool(), out)
    ok = check(
        records_tool(),
        f"memory {full_urls:,} URLs",
        full_urls,
        m,
        outcome,
        err,
    )
    result["full"] = {
        "urls": full_urls,
        "wall": m.wall,
        "rate": full_urls / m.wall,
        "cpu_ms_per_url": 1000 * m.cpu / full_urls,
        "peak_rss_mb": m.maxrss_kb / 1024,
        "ok": ok,
    }
    log(
        f"memory (a): {m.wall:.1f}s, {full_urls / m.wall:,.0f} URL/s, peak RSS {m.maxrss_kb / 1024:.1f} MB, {'ok' if ok else 'FAILED'}"
    )

    log(f"memory (b): {pipe_lines:,} lines through a pipe, sampled for {pipe_seconds:.0f}s then SIGTERM")
    out2 = work / "mem-pipe-out.jsonl"
    written = [0]
    with open(out2, "wb") as fout, open(err, "wb") as ferr:
        proc = subprocess.Popen(
            [fetchpool, "-c", str(k), "--json"],
            stdin=subprocess.PIPE,
            stdout=fout,
            stderr=ferr,
            env=child_env(),
            start_new_session=True,
        )
    GROUPS.add(proc.pid)
    assert proc.stdin is not None
    pipe = proc.stdin

    def feed() -> None:
        try:
            for chunk in _url_lines(targets, pipe_lines, chunk=500):
                pipe.write(chunk)
                written[0] += 500
            pipe.close()
        except (BrokenPipeError, ValueError, OSError):
            pass

    feeder = threading.Thread(target=feed, name="feeder", daemon=True)
    start = time.monotonic()
    feeder.start()
    samples: list[tuple[float, int, int]] = []
    final: dict[str, int] = {}
    reaped = 0
    status = 0
    # wait4(WNOHANG), not proc.poll(): poll would reap the child and lose its exit status.
    while time.monotonic() - start < pipe_seconds:
        st = proc_status_kb(proc.pid)
        if st:
            final = st
            samples.append((time.monotonic() - start, st.get("VmRSS", 0), st.get("VmHWM", 0)))
        reaped, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if reaped:
            break
        time.sleep(0.2)
    finished_alone = bool(reaped)
    lines_at_stop = min(written[0], pipe_lines)
    if not reaped:
        kill_group(proc.pid, signal.SIGTERM)
        killer = threading.Timer(15, kill_group, (proc.pid, signal.SIGKILL))  # if SIGTERM is ignored
        killer.daemon = True
        killer.start()
        try:
            _, status, _ = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    GROUPS.discard(proc.pid)
    try:
        pipe.close()
    except (BrokenPipeError, OSError):
        pass
    feeder.join(timeout=5)
    with open(out2, "rb") as written_records:
        records = sum(1 for _ in written_records)
    if finished_alone and records != pipe_lines:
        loud(
            f"memory pipe run: fetchpool exited by itself after {records:,} of {pipe_lines:,} records\n   {tail(err, 5)}"
        )
    # VmHWM of the exec'd process itself; wait4's ru_maxrss would include this runner's
    # pre-exec RSS (see measure), so it is not used here.
    hwm = max([s[2] for s in samples] + [final.get("VmHWM", 0)])
    early = next((s[1] for s in samples if s[0] >= min(5.0, pipe_seconds / 4)), samples[0][1] if samples else 0)
    late = samples[-1][1] if samples else 0
    result["pipe"] = {
        "lines_generated": pipe_lines,
        "lines_written_to_pipe": lines_at_stop,
        "records_written": records,
        "seconds": pipe_seconds,
        "finished_before_sigterm": finished_alone,
        "exit_code": proc.returncode,
        "peak_rss_mb": hwm / 1024,
        "rss_early_mb": early / 1024,
        "rss_late_mb": late / 1024,
        "early_at_s": min(5.0, pipe_seconds / 4),
        "rss_timeline_mb": _timeline(samples, pipe_seconds),
    }
    log(
        f"memory (b): {records:,} records, {lines_at_stop:,} lines taken from the pipe, peak RSS {hwm / 1024:.1f} MB "
        f"(RSS {early / 1024:.1f} MB early -> {late / 1024:.1f} MB at the end), exit {proc.returncode}"
    )
    if proc.returncode not in (0, 143, -15):
        loud(f"memory pipe run: fetchpool exit code {proc.returncode} after SIGTERM (expected 143)\n   {tail(err, 5)}")
    if late > early * 1.5 and late - early > 20 * 1024:
        loud(f"memory pipe run: RSS grew from {early / 1024:.1f} MB to {late / 1024:.1f} MB while streaming")
    return result


def _timeline(samples: list[tuple[float, int, int]], seconds: float, points: int = 6) -> list[tuple[float, float]]:
    """RSS at evenly spaced moments: tells a plateau (fine) from steady growth (a leak)."""
    out: list[tuple[float, float]] = []
    for i in range(1, points + 1):
        moment = seconds * i / points
        before = [s for s in samples if s[0] <= moment + 0.5]
        if before:
            out.append((round(moment, 1), round(before[-1][1] / 1024, 1)))
    return out


def memory_section(mem: dict[str, object]) -> str:
    full = mem["full"]
    pipe = mem["pipe"]
    assert isinstance(full, dict) and isinstance(pipe, dict)
    return "\n".join(
        [
            "| input | how | URLs fetched | peak RSS MB | notes |",
            "|---|---|---:|---:|---|",
            f"| {full['urls']:,} stdin lines | fetched completely, `-c {mem['k']}` | {full['urls']:,} "
            f"| {full['peak_rss_mb']:.1f} | {full['rate']:,.0f} URL/s, {full['cpu_ms_per_url']:.3f} CPU ms/URL"
            f"{'' if full['ok'] else ', ⚠ checks failed'} |",
            f"| {pipe['lines_generated']:,} stdin lines (generated into a pipe) | ran {pipe['seconds']:.0f} s, then SIGTERM "
            f"| {pipe['records_written']:,} | {pipe['peak_rss_mb']:.1f} | {pipe['lines_written_to_pipe']:,} lines accepted by the "
            f"pipe; RSS {pipe['rss_early_mb']:.1f} MB at {pipe['early_at_s']:.0f} s → {pipe['rss_late_mb']:.1f} MB at the end; "
            f"exit {pipe['exit_code']} |",
            "",
            "RSS over time in the pipe run: "
            + ", ".join(f"{t:g} s: {mb:.1f} MB" for t, mb in pipe.get("rss_timeline_mb", [])),
        ]
    )


MEMORY_NOTES = """\
Why two shapes: fetching 1,000,000 URLs at a few thousand per second would take many minutes, so the
million-line case is a *streaming* check: a generator writes URL lines into fetchpool's stdin pipe,
fetchpool fetches for a fixed time while /proc/PID/status (VmHWM, VmRSS) is sampled, then gets SIGTERM.
A tool that slurped its input would hold all lines (tens of MB) at once and the pipe would accept all of
them immediately; a streaming one takes lines only as fast as it fetches and keeps a flat RSS. The
smaller run is fetched completely (peak RSS from `os.wait4`), so both can be compared directly."""
