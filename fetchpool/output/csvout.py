"""The `csv` format: a header row, then one row per record, flushed as it completes.

Columns follow `FIELDS` (or `--fields`) so scripts can rely on their order. Empty means
null; booleans are `true`/`false` as in the JSON, so both formats read the same.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ..result import FIELDS, Result
from . import write_lines
from .select import project

MAX_BATCH = 64


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


class CsvWriter:
    """Writes RFC 4180 quoting with `\\n` line ends; the header comes even for zero rows.

    As in `JsonLinesWriter`, rows reach the stream only whole, a batch per `write` call
    followed by a flush; a batch is kept only while another record is already waiting
    (`more_coming`), so nobody waits on a finished record. `flush()` is the pool's idle hook.
    """

    def __init__(
        self, stream: TextIO, fields: Sequence[str] = FIELDS, more_coming: Callable[[], bool] = lambda: False
    ) -> None:
        self.stream = stream
        self.fields = tuple(fields)
        self.more_coming = more_coming
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        self._rows = 0
        self._csv.writerow(self.fields)

    def write(self, result: Result) -> None:
        record = project(result, self.fields)
        self._csv.writerow([_cell(record[f]) for f in self.fields])
        self._rows += 1
        if self._rows >= MAX_BATCH or not self.more_coming():
            self.flush()

    def flush(self) -> None:
        text = self._buffer.getvalue()
        if text:
            self._buffer.seek(0)
            self._buffer.truncate()
            self._rows = 0
        write_lines(self.stream, text)

    def close(self) -> None:
        self.flush()
