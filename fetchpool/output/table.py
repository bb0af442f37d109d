"""A readable table for a person at a terminal, one row per record as it completes.

The cell helpers here (status colour, durations, sizes, URLs cut in the middle) are
shared with the live view, so both show a record the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..result import Result

STATUS_STYLE = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}
ERROR_STYLE = "bold red"
GAP = 3  # between two columns: a pad, the (blank) divider, a pad
# Columns a narrow terminal gives up, last first: the URL says what a row is about, so it
# keeps at least URL_MIN cells while SIZE, then TIME, make room for it.
OPTIONAL_COLUMNS = (("TIME", 7), ("SIZE", 10))
URL_MIN = 20
NOTE_MIN = 32  # a URL column narrower than this shows no error message: the status says the kind


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_ms(ms: float | None) -> str:
    """`0.4 ms`, `12 ms`, `1.25 s`, `2m05s`: as many digits as a person needs."""
    if ms is None:
        return "-"
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, secs = divmod(int(ms / 1000), 60)
    return f"{minutes}m{secs:02d}s"


def shorten(url: str, width: int) -> str:
    """Cut the middle of a long URL, keeping host and the end of the path visible."""
    if len(url) <= width or width < 5:
        return url
    keep = width - 1
    head = (keep + 1) // 2
    return url[:head] + "…" + url[len(url) - (keep - head) :]


def outcome_style(name: str) -> str:
    """Colour for a status class (`4xx`) or an error kind, as in the status column."""
    if name[:1].isdigit() and name.endswith("xx"):
        return STATUS_STYLE.get(int(name[0]), "white")
    return ERROR_STYLE


def status_text(result: Result) -> Text:
    """The status cell: the code coloured by class, or the error kind in red."""
    if result.error is not None:
        return Text(result.error.value, style=ERROR_STYLE)
    code = result.status or 0
    return Text(str(code), style=STATUS_STYLE.get(code // 100, "white"))


def table_layout(width: int, status_width: int) -> tuple[tuple[str, ...], int]:
    """The optional columns that fit beside STATUS and a readable URL, and the URL's width.

    SIZE goes first, then TIME; STATUS and URL always stay, the URL cut in the middle.
    """
    kept = [name for name, _ in OPTIONAL_COLUMNS]
    widths = dict(OPTIONAL_COLUMNS)
    while True:
        url_width = width - status_width - GAP - sum(widths[name] + GAP for name in kept)
        if url_width >= URL_MIN or not kept:
            return tuple(kept), max(url_width, 5)
        kept.pop()


def results_table(rows: Iterable[Result], width: int, title: str | None = None, expand: bool = False) -> Table:
    """A Rich table of records fitted to `width`: the URL is shortened in the middle.

    `expand` fills the width whatever the URLs, so a live table does not jitter.
    """
    records = list(rows)
    statuses = [status_text(r) for r in records]
    status_width = max([7, *(len(s) for s in statuses)])
    kept, url_width = table_layout(width, status_width)
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        pad_edge=False,
        title=title,
        title_justify="left",
        title_style="bold",
        expand=expand,
    )
    table.add_column("STATUS", no_wrap=True, min_width=status_width)
    for name, least in OPTIONAL_COLUMNS:
        if name in kept:
            table.add_column(name, justify="right", no_wrap=True, min_width=least)
    longest = max([3, *(len(r.url) for r in records)])
    table.add_column(
        "URL",
        no_wrap=True,
        overflow="ellipsis",
        min_width=min(longest, url_width),
        max_width=url_width,
        ratio=1 if expand else None,
    )
    for r, status in zip(records, statuses, strict=True):
        cells = {"TIME": human_ms(r.elapsed_ms), "SIZE": human_bytes(r.bytes)}
        table.add_row(status, *(cells[name] for name in kept), url_cell(r, url_width))
    return table


def url_cell(result: Result, width: int) -> Text:
    """The URL cut in the middle to `width`, then its error message if there is room.

    An error message may take up to a third of the column; the URL keeps both ends.
    """
    note = f"  {result.error_message}" if result.error_message and width >= NOTE_MIN else ""
    url = Text(shorten(result.url, width - min(len(note), width // 3)))
    url.append(note, style="dim")
    return url


class PipeConsole(Console):
    """A Console that lets a closed pipe raise BrokenPipeError, as the JSON writers do.

    Rich's own handling exits with status 1; the CLI turns EPIPE into its quiet 141.
    """

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


STATUS_COL = 18  # the longest error kind, too_many_redirects


class TableWriter:
    """Prints aligned rows as records complete: status (coloured), time, size, URL, error."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._header = False

    def write(self, result: Result) -> None:
        if not self._header:
            head = f"{'STATUS':<{STATUS_COL}}  {'TIME':>9}  {'SIZE':>10}  URL"
            self.console.print(f"[bold]{head}[/]", highlight=False)
            self._header = True
        self.console.print(self.row(result), highlight=False, overflow="ellipsis", no_wrap=True)

    def write_batch(self, results: Sequence[Result]) -> None:
        for result in results:
            self.write(result)

    def row(self, result: Result) -> str:
        if result.error is not None:
            status = f"[red]{result.error.value:<{STATUS_COL}}[/]"
        else:
            code = result.status or 0
            status = f"[{STATUS_STYLE.get(code // 100, 'white')}]{code:<{STATUS_COL}}[/]"
        took = f"{human_ms(result.elapsed_ms):>9}"
        size = f"{human_bytes(result.bytes):>10}"
        room = max(self.console.width - STATUS_COL - 27, 20)
        line = f"{status}  {took}  {size}  {escape(shorten(result.url, room))}"
        if result.error_message:
            line += f"  [dim]{escape(result.error_message)}[/]"
        return line

    def close(self) -> None:
        return None
