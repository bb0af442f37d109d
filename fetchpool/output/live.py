"""The live terminal view: progress, counters by outcome and the latest records, then a summary.

Rendering never happens per record. `write()` only updates a few in-memory structures
(a bounded deque, a small heap) under a lock; Rich's `Live` refresh thread redraws at a
fixed rate from those and from the shared `Stats`, so a fast run of 100k URLs costs the
same screen work as a slow run of 100. The main thread alone starts and stops the `Live`.

Everything is fitted to the screen: columns and progress fields give way by priority on a
narrow one, and the final report shortens its tables (failures first) on a short one.
"""

from __future__ import annotations

import heapq
import os
import re
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.constrain import Constrain
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.segment import Segment, Segments
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ..result import Result
from .panel import Pairs, clock, counters, summary_panel
from .stats import Stats
from .table import results_table

TABLE_EVERY = 0.5  # seconds between layouts of the latest-results table
# The live view stays this many cells short of the right edge: the terminal echoes `^C`
# where the cursor is, and on a full-width line that wraps, moving the whole frame down a
# line so that erasing it at the end would leave its first line on the screen.
MARGIN = 2
BAR_WIDTH, BAR_MIN = 30, 8
SECTION_FRAME = 4  # a table's title, header, rule and the blank line after it
_URL_LINE = re.compile(rb"^[ \t\r\f\v]*[^\s#]", re.MULTILINE)
_BOM = b"\xef\xbb\xbf"


@dataclass
class Section:
    """One table of the final report."""

    rows: list[Result]
    title: str | None = None


class LiveWriter:
    """A `Writer` that draws a live view on `console` and a final report on `close()`.

    `stats` is the run's `Stats`, fed by the caller (once per record, filtered or not);
    this writer only reads it. `write()` receives the records to list (after any filter).
    `total` (None: unknown, a spinner and a count instead of a bar) may be set later.
    `progress_only` draws just the progress line and the final summary: for stderr when
    stdout is a pipe. `interrupted` tells `close()` whether the run was cut short.
    `start_after`: the view waits for this event (input typed at the terminal is over), so
    it never draws over what is being typed. `records_to` names the file the records go to,
    for the note of a report shortened to fit the screen.
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
        start_after: threading.Event | None = None,
        records_to: str | None = None,
    ) -> None:
        self.console = console
        self.stats = stats
        self.total = total
        self.progress_only = progress_only
        self.short_run = short_run
        self.slowest = slowest
        self.interrupted = interrupted
        self.records_to = records_to
        self.fit = console.is_terminal  # the final report fits the screen's height; a file has none
        self._lock = threading.Lock()
        self._recent: deque[Result] = deque(maxlen=recent)
        self._failures: deque[Result] = deque(maxlen=failures)
        self._failed = 0
        self._slow: list[tuple[float, int, Result]] = []
        self._all: list[Result] | None = []
        self._seen = 0
        self._spinner = Spinner("dots", style="cyan")
        self._closed = False
        self._table_cache: tuple[float, tuple[int, int], Segments] | None = None
        self._live = Live(
            console=console,
            get_renderable=self._render,
            refresh_per_second=refresh_per_second,
            auto_refresh=console.is_interactive,  # a file or a dumb terminal gets only the final report
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._waiting = start_after
        if start_after is None:
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

    def poll(self) -> None:
        """Start the view held back by `start_after` once that event is set (main thread)."""
        if self._waiting is not None and self._waiting.is_set() and not self._closed:
            self._waiting = None
            self._live.start()

    def write(self, result: Result) -> None:
        """Remember the record for the tables; drawing is left to the refresh thread."""
        if self._waiting is not None:
            self.poll()
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
        self.console.print(Group(*self._report()))

    # --- what the refresh thread draws -------------------------------------------------

    def _render(self) -> RenderableType:
        width = max(self.console.width - MARGIN, 10)
        parts: list[RenderableType] = [self._progress_line(done=False, width=width)]
        if not self.progress_only:
            counts = counters(self.stats)
            rows = self.console.height - 1 - len(counts.lines(width)) - 3  # a spare line; progress, header, rule
            parts += [counts, self._latest_table(width, rows)]
        return Constrain(Group(*parts), width)

    def _latest_table(self, width: int, rows: int) -> RenderableType:
        """The latest rows, laid out at most TABLE_EVERY seconds apart and replayed between.

        Laying out a full-screen table is most of what a frame costs; the progress line
        above it keeps its full refresh rate, the rows below change a few times a second.
        """
        now, shape = time.monotonic(), (width, rows)
        cached = self._table_cache
        if cached is not None and now - cached[0] < TABLE_EVERY and cached[1] == shape:
            return cached[2]
        rows = max(0, min(len(self._recent), rows))
        with self._lock:
            latest = list(self._recent)[-rows:] if rows else []
        if not latest:
            return Text("")
        options = self.console.options.update_width(width)
        lines = self.console.render_lines(results_table(latest, width, expand=True), options, pad=False)
        frozen = Segments([seg for i, line in enumerate(lines) for seg in ([Segment.line()] if i else []) + line])
        self._table_cache = (now, shape, frozen)
        return frozen

    def _progress_line(self, done: bool, width: int) -> Table:
        count, elapsed, rate = self.stats.total, self.stats.elapsed(), self.stats.rate()
        total = self.total if self.total is None else max(self.total, count)
        if done:
            icon: RenderableType = Text("✗", "yellow") if self.interrupted() else Text("✓", "green")
        else:
            icon = self._spinner
        return progress_line(icon, count, total, rate, elapsed, done, width)

    # --- the final report ----------------------------------------------------------------

    def _report(self) -> list[RenderableType]:
        """Tables and summary, shortened to the screen's height when they would scroll off.

        First the histogram goes (a compact summary), then table rows: failures keep theirs
        longest, and a note says how many rows were left out and where to find them all.
        """
        width, interrupted = self.console.width, self.interrupted()
        head: list[RenderableType] = [self._progress_line(done=True, width=width)] if self.progress_only else []
        sections = [] if self.progress_only else self._sections()
        tables = _tables(sections, width)
        full = [*head, *tables, summary_panel(self.stats, interrupted, width=width)]
        room = self.console.height - 1  # the shell's prompt comes next
        if not self.fit or self._height(full) <= room:
            return full
        panel = summary_panel(self.stats, interrupted, width=width, compact=True)
        room -= self._height([*head, panel])
        if self._height(tables) <= room:
            return [*head, *tables, panel]
        room -= self._height([self._note(sum(len(s.rows) for s in sections))])
        shown = self._trim(room)
        left = sum(len(s.rows) for s in sections) - sum(len(s.rows) for s in shown)
        return [*head, *_tables(shown, width), self._note(left), panel]

    def _sections(self) -> list[Section]:
        """Short run: every row. Long run: the latest failures and the slowest records."""
        with self._lock:
            if self._all is not None:
                return [Section(list(self._all))] if self._all else []
            out: list[Section] = []
            if self._failures:
                out.append(Section(list(self._failures), self._failures_title(len(self._failures))))
            slow = self._slowest()
            out.append(Section(slow, f"slowest {len(slow)}"))
        return out

    def _failures_title(self, shown: int) -> str:
        return f"failures ({shown} of {self._failed:,}, latest)" if shown < self._failed else "failures"

    def _slowest(self) -> list[Result]:
        return [r for _, _, r in sorted(self._slow, key=lambda t: (-t[0], t[1]))]

    def _trim(self, room: int) -> list[Section]:
        """The tables cut to `room` lines: failures first, then the slowest."""
        with self._lock:
            if self._all is not None:
                failed = [r for r in self._all if not r.ok]
                rest = sorted((r for r in self._all if r.ok), key=lambda r: -r.elapsed_ms)
                rows = (failed + rest)[: max(room - SECTION_FRAME, 0)]
                title = f"{len(rows)} of {len(self._all)} rows, failures first"
                return [Section(rows, title)] if rows else []
            failures = list(self._failures)[-max(room - SECTION_FRAME, 0) :] if room > SECTION_FRAME else []
            out = [Section(failures, self._failures_title(len(failures)))] if failures else []
            room -= (SECTION_FRAME + len(failures)) if failures else 0
            slow = self._slowest()[: max(room - SECTION_FRAME, 0)]
            if slow:
                out.append(Section(slow, f"slowest {len(slow)}"))
        return out

    def _note(self, left: int) -> Pairs:
        where = f"the records are in {self.records_to}" if self.records_to else "every record: -o FILE or --json"
        return Pairs([("", Text(f"{left:,} rows left out to fit the screen;", "dim")), (" ", Text(where, "dim"))])

    def _height(self, parts: list[RenderableType]) -> int:
        return len(self.console.render_lines(Group(*parts), pad=False)) if parts else 0


def _tables(sections: list[Section], width: int) -> list[RenderableType]:
    out: list[RenderableType] = []
    for section in sections:
        out += [results_table(section.rows, width, title=section.title), Text("")]
    return out


def progress_line(
    icon: RenderableType, count: int, total: int | None, rate: float, elapsed: float, done: bool, width: int
) -> Table:
    """Icon, bar, done/total, percent, rate, elapsed and ETA on one line of `width` cells.

    A narrow screen first loses the words (`elapsed 0:07  ETA 0:03` becomes `0:07<0:03`,
    `URL/s` becomes `/s`), then the bar narrows and goes, then the times, then the rate:
    every field shown is whole.
    """
    layouts = _progress_fields(count, total, rate, elapsed, done)
    cells, with_bar = layouts[-1]
    bar_width = 0
    for cells, with_bar in layouts:
        used = 1 + sum(text.cell_len + 1 for text in cells)  # the icon, and a gap before each field
        if with_bar and width - used - 1 >= BAR_MIN:
            bar_width = min(BAR_WIDTH, width - used - 1)
            break
        if not with_bar and used <= width:
            break
    grid = Table.grid(padding=(0, 1))
    row: list[RenderableType] = [icon]
    if bar_width:
        row.append(ProgressBar(total=total, completed=count, width=bar_width))
    row += cells
    for _ in row:
        grid.add_column(no_wrap=True)
    grid.add_row(*row)
    return grid


def _progress_fields(
    count: int, total: int | None, rate: float, elapsed: float, done: bool
) -> list[tuple[list[Text], bool]]:
    """The progress line's fields from the widest form to the narrowest, and whether a bar fits in."""
    progress = [Text(f"{count:,}/{total:,}"), Text(f"{count / total:>4.0%}")] if total else [Text(f"{count:,} done")]
    eta = None
    if total and not done:
        eta = clock((total - count) / rate) if rate > 0 else "-:--"
    words = [Text(f"{rate:,.1f} URL/s"), Text(f"elapsed {clock(elapsed)}", "dim")]
    words += [Text(f"ETA {eta}", "dim")] if eta else []
    short_rate = Text(f"{rate:,.1f}/s")
    short_time = Text(clock(elapsed) + (f"<{eta}" if eta else ""), "dim")
    compact = [*progress, short_rate, short_time]
    return [
        ([*progress, *words], True),
        (compact, True),
        (compact, False),
        ([*progress, short_rate], False),
        (progress, False),
        (progress[:1], False),
    ]


def count_lines(paths: Iterable[object], chunk_size: int = 1 << 20) -> int | None:
    """URL lines (not blank, not `#` comments) in the FILEs: the progress bar's total.

    Reads binary chunks and carries at most one byte of an unfinished line, so memory is
    flat even for a file with no newline. None when an input is stdin, unreadable or not
    a regular file: reading a pipe (`<(cmd)`, a FIFO) here would take its lines from the
    fetch. The view then shows a count and a spinner. Unicode-only whitespace lines count
    as URLs, so the total can exceed the records by those; the bar clamps to what was done.
    """
    total = 0
    for path in paths:
        if path == "-":
            return None
        if not isinstance(path, str):  # a URL given as an argument
            total += 1
            continue
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return None
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
