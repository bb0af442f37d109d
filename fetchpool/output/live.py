"""The live terminal view: progress, counters by outcome and the latest records, then a summary.

Rendering never happens per record. `write()` only updates a few in-memory structures
(a bounded deque, a small heap) under a lock; Rich's `Live` refresh thread redraws at a
fixed rate from those and from the shared `Stats`, so a fast run of 100k URLs costs the
same screen work as a slow run of 100. The main thread alone starts and stops the `Live`.
"""

from __future__ import annotations

import heapq
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.segment import Segment, Segments
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ..result import Result
from .stats import Stats, outcome_key
from .table import human_bytes, human_ms, outcome_style, results_table

BLOCKS = " ▏▎▍▌▋▊▉█"
TABLE_EVERY = 0.5  # seconds between layouts of the latest-results table
_URL_LINE = re.compile(rb"^[ \t\r\f\v]*[^\s#]", re.MULTILINE)
_BOM = b"\xef\xbb\xbf"


class LiveWriter:
    """A `Writer` that draws a live view on `console` and a final report on `close()`.

    `stats` is the run's `Stats`, fed by the caller (once per record, filtered or not);
    this writer only reads it. `write()` receives the records to list (after any filter).
    `total` (None: unknown, a spinner and a count instead of a bar) may be set later.
    `progress_only` draws just the progress line and the final summary: for stderr when
    stdout is a pipe. `interrupted` tells `close()` whether the run was cut short.
    """

    def __init__(
        self,
        console: Console,
        stats: Stats,
        total: int | None = None,
        *,
        progress_only: bool = False,
        recent: int = 30,
        short_run: int = 40,
        slowest: int = 10,
        failures: int = 20,
        refresh_per_second: float = 4.0,
        interrupted: Callable[[], bool] = lambda: False,
    ) -> None:
        self.console = console
        self.stats = stats
        self.total = total
        self.progress_only = progress_only
        self.short_run = short_run
        self.slowest = slowest
        self.interrupted = interrupted
        self._lock = threading.Lock()
        self._recent: deque[Result] = deque(maxlen=recent)
        self._failures: deque[Result] = deque(maxlen=failures)
        self._failed = 0
        self._slow: list[tuple[float, int, Result]] = []
        self._all: list[Result] | None = []
        self._seen = 0
        self._spinner = Spinner("dots", style="cyan")
        self._closed = False
        self._table_cache: tuple[float, int, Segments] | None = None
        self._live = Live(
            console=console,
            get_renderable=self._render,
            refresh_per_second=refresh_per_second,
            auto_refresh=console.is_interactive,  # a file or a dumb terminal gets only the final report
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def __enter__(self) -> LiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count_total(self, paths: Iterable[object]) -> threading.Thread:
        """Set `total` from `count_lines(paths)` on a daemon thread, so fetching starts at once.

        Counting is far faster than fetching (about 0.2 s per million lines), so the bar
        gets its total long before the input is consumed; until then it shows a count.
        """

        def count() -> None:
            self.total = count_lines(paths)

        thread = threading.Thread(target=count, name="fetchpool-count", daemon=True)
        thread.start()
        return thread

    def write(self, result: Result) -> None:
        """Remember the record for the tables; drawing is left to the refresh thread."""
        if self.progress_only:
            return
        with self._lock:
            self._seen += 1
            self._recent.append(result)
            if self._all is not None:
                if len(self._all) < self.short_run:
                    self._all.append(result)
                else:
                    self._all = None  # a long run: the final report shows failures and the slowest
            if not result.ok:
                self._failed += 1
                self._failures.append(result)
            if len(self._slow) < self.slowest:
                heapq.heappush(self._slow, (result.elapsed_ms, self._seen, result))
            elif self._slow and result.elapsed_ms > self._slow[0][0]:
                heapq.heapreplace(self._slow, (result.elapsed_ms, self._seen, result))

    def close(self) -> None:
        """Stop the live display (it is erased) and print the final tables and summary."""
        if self._closed:
            return
        self._closed = True
        self.stats.finish()
        self._live.stop()
        final: list[RenderableType] = []
        if self.progress_only:
            final.append(self._progress_line(done=True))
        else:
            final.extend(self._final_tables())
        final.append(summary_panel(self.stats, self.interrupted()))
        self.console.print(Group(*final))

    # --- what the refresh thread draws -------------------------------------------------

    def _render(self) -> RenderableType:
        parts: list[RenderableType] = [self._progress_line(done=False)]
        if self.progress_only:
            return Group(*parts)
        parts.append(counters(self.stats))
        parts.append(self._latest_table())
        return Group(*parts)

    def _latest_table(self) -> RenderableType:
        """The latest rows, laid out at most TABLE_EVERY seconds apart and replayed between.

        Laying out a full-screen table is most of what a frame costs; the progress line
        above it keeps its full refresh rate, the rows below change a few times a second.
        """
        now, width = time.monotonic(), self.console.width
        cached = self._table_cache
        if cached is not None and now - cached[0] < TABLE_EVERY and cached[1] == width:
            return cached[2]
        rows = max(0, min(len(self._recent), self.console.height - 8))
        with self._lock:
            latest = list(self._recent)[-rows:] if rows else []
        if not latest:
            return Text("")
        lines = self.console.render_lines(results_table(latest, width, expand=True), pad=False)
        frozen = Segments([seg for i, line in enumerate(lines) for seg in ([Segment.line()] if i else []) + line])
        self._table_cache = (now, width, frozen)
        return frozen

    def _progress_line(self, done: bool) -> Table:
        """Spinner, bar, done/total, percent, rate, elapsed and ETA on one line."""
        count, elapsed, rate = self.stats.total, self.stats.elapsed(), self.stats.rate()
        total = self.total if self.total is None else max(self.total, count)
        grid = Table.grid(padding=(0, 1))
        if done:
            icon: RenderableType = Text("✗", "yellow") if self.interrupted() else Text("✓", "green")
        else:
            icon = self._spinner
        cells: list[RenderableType] = [icon, ProgressBar(total=total, completed=count, width=30)]
        if total:
            cells += [Text(f"{count:,}/{total:,}"), Text(f"{count / total:>4.0%}")]
        else:
            cells.append(Text(f"{count:,} done"))
        cells += [Text(f"{rate:,.1f} URL/s"), Text(f"elapsed {clock(elapsed)}", "dim")]
        if total and not done:
            eta = clock((total - count) / rate) if rate > 0 else "-:--"
            cells.append(Text(f"ETA {eta}", "dim"))
        for _ in cells:
            grid.add_column(no_wrap=True)
        grid.add_row(*cells)
        return grid

    def _final_tables(self) -> list[RenderableType]:
        """Short run: every row. Long run: the latest failures and the slowest records."""
        width = self.console.width
        with self._lock:
            if self._all is not None:
                return [results_table(self._all, width), Text("")] if self._all else []
            out: list[RenderableType] = []
            if self._failures:
                shown = len(self._failures)
                title = f"failures ({shown} of {self._failed:,}, latest)" if shown < self._failed else "failures"
                out += [results_table(self._failures, width, title=title), Text("")]
            slow = [r for _, _, r in sorted(self._slow, key=lambda t: (-t[0], t[1]))]
            out += [results_table(slow, width, title=f"slowest {len(slow)}"), Text("")]
        return out


def counters(stats: Stats) -> Text:
    """`180 ok  20 failed │ 2xx 150  4xx 12  timeout 8 │ 1.2 MiB`, coloured by outcome."""
    total, ok, size, counts = stats.snapshot()
    text = totals_text(ok, total - ok)
    text.append("  │  ", "dim")
    if counts:
        text.append_text(outcomes_text(counts))
        text.append("  │  ", "dim")
    text.append(human_bytes(size))
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


def totals_text(ok: int, failed: int) -> Text:
    text = Text()
    text.append(f"{ok:,} ok", "green")
    text.append("  ")
    text.append(f"{failed:,} failed", "red" if failed else "dim")
    return text


def outcomes_text(counts: dict[str, int]) -> Text:
    """`2xx 150  4xx 12  timeout 8`: each outcome in its status-column colour."""
    text = Text()
    for i, name in enumerate(sorted(counts, key=outcome_key)):
        text.append("  " if i else "")
        text.append(name, outcome_style(name))
        text.append(f" {counts[name]:,}")
    return text


def summary_panel(stats: Stats, interrupted: bool = False, bins: int = 8) -> Panel:
    """Totals, throughput, bytes, latency percentiles and a latency histogram, boxed."""
    total, ok, size, counts = stats.snapshot()
    head = totals_text(ok, total - ok)
    head.append(f"   {human_bytes(size)}   {stats.rate():,.1f} URL/s")
    lat = Text("latency  ", "bold")
    for name, value in stats.percentiles().items():
        lat.append(f"{name} ", "dim")
        lat.append(f"{human_ms(value)}   ")
    lines: list[RenderableType] = [head, outcomes_text(counts), lat]
    histogram = latency_histogram(stats.bins(bins))
    if histogram is not None:
        lines += [Text(""), histogram]
    noun = "URL" if total == 1 else "URLs"
    title = Text(f"{total:,} {noun} in {clock(stats.elapsed(), fine=True)}", "bold")
    if interrupted:
        title.append(" · interrupted", "bold yellow")
    return Panel(Group(*lines), title=title, title_align="left", expand=False, border_style="blue")


def latency_histogram(bins: list[tuple[float, float, int]], width: int = 32) -> Table | None:
    """One bar per latency bin, drawn with eighth-block characters; None when empty."""
    if not bins:
        return None
    rows: list[tuple[str, int]] = []
    for lo, hi, n in bins:  # bins too narrow to tell apart at this precision become one
        label = f"{human_ms(lo)} – {human_ms(hi)}"
        if rows and rows[-1][0] == label:
            rows[-1] = (label, rows[-1][1] + n)
        else:
            rows.append((label, n))
    peak = max(n for _, n in rows) or 1
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    for label, n in rows:
        grid.add_row(label, Text(bar(n, peak, width), "cyan"), f"{n:,}")
    return grid


def bar(value: float, peak: float, width: int) -> str:
    """A horizontal bar `value/peak` of `width` cells, to an eighth of a cell; never empty for value > 0."""
    eighths = round(value / peak * width * 8) if peak > 0 else 0
    if value > 0:
        eighths = max(eighths, 1)
    full, part = divmod(eighths, 8)
    return "█" * full + (BLOCKS[part] if part else "")


def clock(seconds: float, fine: bool = False) -> str:
    """`0:07`, `12:34`, `1:02:03`; `fine` shows `2.31 s` under a minute (for totals)."""
    if fine and seconds < 60:
        return f"{seconds:.2f} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def count_lines(paths: Iterable[object], chunk_size: int = 1 << 20) -> int | None:
    """URL lines (not blank, not `#` comments) in the FILEs: the progress bar's total.

    Reads binary chunks and carries at most one byte of an unfinished line, so memory is
    flat even for a file with no newline. None when an input is stdin or unreadable: the
    view then shows a count and a spinner. Unicode-only whitespace lines count as URLs,
    so the total can exceed the records by those; the bar clamps to what was done.
    """
    total = 0
    for path in paths:
        if path == "-":
            return None
        if not isinstance(path, str):  # a URL given as an argument
            total += 1
            continue
        try:
            total += _count_file(path, max(chunk_size, 4))
        except OSError:
            return None
    return total


def _count_file(path: str, chunk_size: int) -> int:
    count, carry, first = 0, b"", True
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            if first and chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
            first = False
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            count += len(_URL_LINE.findall(data, 0, cut))
            # Only whether the unfinished line has a first non-blank byte (and which) matters.
            carry = data[cut:].lstrip(b" \t\r\f\v")[:1]
    return count + (1 if carry and carry != b"#" else 0)
