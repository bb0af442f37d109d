"""The summary panel and the counters line: labelled numbers that wrap whole, and a histogram.

Rich wraps text at any space, which splits `connect` from its count on a narrow screen.
`Pairs` lays out whole items instead (`label count`, `p50 12 ms`) and breaks lines only
between them, at whatever width it is given: the live counters, the panel, any terminal.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .stats import Stats, outcome_key
from .table import human_bytes, human_ms, outcome_style

BLOCKS = " ▏▎▍▌▋▊▉█"
HISTOGRAM_BAR, BAR_MIN = 32, 4  # cells of the widest and the narrowest histogram bar
PANEL_FRAME = 4  # the panel's two borders and two pads


class Pairs:
    """Items on as few lines as the width allows, each kept whole; `(separator, item)` pairs.

    The separator is drawn only between two items on the same line, never at a line's start.
    """

    def __init__(self, items: Iterable[tuple[str, Text]]) -> None:
        self.items = list(items)

    def lines(self, width: int) -> list[Text]:
        out: list[Text] = []
        for sep, item in self.items:
            if out and out[-1].cell_len + len(sep) + item.cell_len <= width:
                out[-1].append(sep, "dim")
                out[-1].append_text(item)
            else:
                out.append(item.copy())
        for line in out:
            line.no_wrap, line.overflow = True, "ellipsis"  # an item wider than the screen
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        widest = max((item.cell_len for _, item in self.items), default=0)
        one_line = sum(len(sep) + item.cell_len for sep, item in self.items) - len(
            self.items[0][0] if self.items else ""
        )
        return Measurement(min(widest, options.max_width), min(one_line, options.max_width))


def counters(stats: Stats) -> Pairs:
    """`180 ok  20 failed │ 2xx 150  4xx 12  timeout 8 │ 1.2 MiB`, coloured by outcome."""
    total, ok, size, counts = stats.snapshot()
    items = totals(ok, total - ok)
    for i, item in enumerate(outcomes(counts)):
        items.append(("  │  " if i == 0 else item[0], item[1]))
    items.append(("  │  ", Text(human_bytes(size))))
    return Pairs(items)


def totals(ok: int, failed: int) -> list[tuple[str, Text]]:
    return [("", Text(f"{ok:,} ok", "green")), ("  ", Text(f"{failed:,} failed", "red" if failed else "dim"))]


def outcomes(counts: dict[str, int]) -> list[tuple[str, Text]]:
    """`2xx 150`, `4xx 12`, `timeout 8`: each outcome in its status-column colour."""
    items: list[tuple[str, Text]] = []
    for name in sorted(counts, key=outcome_key):
        item = Text(name, outcome_style(name))
        item.append(f" {counts[name]:,}")
        items.append(("  ", item))
    return items


def summary_panel(
    stats: Stats, interrupted: bool = False, bins: int = 8, width: int | None = None, compact: bool = False
) -> Panel:
    """Totals, throughput, bytes, latency percentiles and (unless `compact`) a histogram, boxed.

    `width` is the screen's: the histogram's bars shrink so its labels stay whole.
    """
    total, ok, size, counts = stats.snapshot()
    lines: list[RenderableType] = []
    if interrupted and stats.read is not None:
        lines.append(Pairs(stopped(stats.not_fetched)))
    head = [*totals(ok, total - ok), ("   ", Text(human_bytes(size))), ("   ", Text(f"{stats.rate():,.1f} URL/s"))]
    lines += [Pairs(head), Pairs(outcomes(counts))]
    if stats.monitor is not None:
        lines.append(Text(stats.monitor_text().removeprefix("; ")))
    latency = [("", Text("latency", "bold"))]
    for name, value in stats.percentiles().items():
        item = Text(f"{name} ", "dim")
        item.append(human_ms(value))
        latency.append(("  " if len(latency) == 1 else "   ", item))
    lines.append(Pairs(latency))
    room = (width - PANEL_FRAME) if width is not None else None
    histogram = None if compact else latency_histogram(stats.bins(bins), room=room)
    if histogram is not None:
        lines += [Text(""), histogram]
    noun = "URL" if total == 1 else "URLs"
    title = Text(f"{total:,} {noun} in {clock(stats.elapsed(), fine=True)}", "bold")
    if interrupted:
        title.append(" · interrupted", "bold yellow")
    return Panel(Group(*lines), title=title, title_align="left", expand=False, border_style="blue")


def stopped(not_fetched: int) -> list[tuple[str, Text]]:
    """`16 not fetched (in flight or queued)`, for the panel of an interrupted run."""
    return [
        ("", Text(f"{not_fetched:,} not fetched", "bold yellow" if not_fetched else "bold")),
        (" ", Text("(in flight or queued)")),
    ]


def histogram_rows(bins: list[tuple[float, float, int]]) -> list[tuple[str, int]]:
    """`(label, count)` per bin, with no bin whose ends read the same at this precision.

    A bin whose range collapses (`2.00 s – 2.00 s`) joins its neighbour; when every edge
    reads the same, one row carries the single value.
    """
    rows: list[list[str | int]] = []  # [low label, high label, count]
    for lo, hi, n in bins:
        low, high = human_ms(lo), human_ms(hi)
        if rows and (high == rows[-1][1] or rows[-1][0] == rows[-1][1]):
            rows[-1][1] = high
            rows[-1][2] = int(rows[-1][2]) + n
        else:
            rows.append([low, high, n])
    return [(str(low) if low == high else f"{low} – {high}", int(n)) for low, high, n in rows]


def latency_histogram(
    bins: list[tuple[float, float, int]], width: int = HISTOGRAM_BAR, room: int | None = None
) -> Table | None:
    """One bar per latency bin, in eighth-block characters; None when empty.

    `room` (cells available) narrows the bars, so labels and counts are never cut; with no
    room for a bar of BAR_MIN cells there is no histogram (None) rather than a cut one.
    """
    rows = histogram_rows(bins)
    if not rows:
        return None
    if room is not None:
        labels = max(len(label) for label, _ in rows)
        numbers = max(len(f"{n:,}") for _, n in rows)
        width = min(width, room - labels - numbers - 2)
        if width < BAR_MIN:
            return None
    peak = max(n for _, n in rows) or 1
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim", no_wrap=True)
    grid.add_column(no_wrap=True, min_width=width)
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
