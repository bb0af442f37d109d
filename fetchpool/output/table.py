"""A readable table for a person at a terminal, one row per record as it completes."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ..result import Result

STATUS_STYLE = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def shorten(url: str, width: int) -> str:
    """Cut the middle of a long URL, keeping host and the end of the path visible."""
    if len(url) <= width or width < 5:
        return url
    keep = width - 1
    head = (keep + 1) // 2
    return url[:head] + "…" + url[len(url) - (keep - head) :]


class TableWriter:
    """Prints aligned rows: status (coloured), time, size, URL, and the error if any."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._header = False

    def write(self, result: Result) -> None:
        if not self._header:
            self.console.print("[bold]STATUS   TIME      SIZE       URL[/]", highlight=False)
            self._header = True
        self.console.print(self.row(result), highlight=False, overflow="ellipsis", no_wrap=True)

    def row(self, result: Result) -> str:
        if result.error is not None:
            status = f"[red]{result.error.value:<7}[/]"
        else:
            code = result.status or 0
            status = f"[{STATUS_STYLE.get(code // 100, 'white')}]{code:<7}[/]"
        took = f"{result.elapsed_ms:>6.0f} ms"
        size = f"{human_bytes(result.bytes):>10}"
        line = f"{status}  {took}  {size}  {escape(shorten(result.url, max(self.console.width - 32, 20)))}"
        if result.error_message:
            line += f"  [dim]{escape(result.error_message)}[/]"
        return line

    def close(self) -> None:
        return None
