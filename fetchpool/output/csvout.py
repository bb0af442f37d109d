"""The `csv` format: a header row, then one row per record, flushed as it completes.

Columns follow `FIELDS` (or `--fields`) so scripts can rely on their order. Empty means
null; booleans are `true`/`false` as in the JSON, so both formats read the same.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, TextIO

from ..result import FIELDS, Result
from . import LineWriter
from .select import project


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


class CsvWriter(LineWriter):
    """Writes RFC 4180 quoting with `\\n` line ends; the header comes even for zero rows.

    As in `JsonLinesWriter`, rows reach the stream only whole, one write per batch.
    """

    def __init__(self, stream: TextIO, fields: Sequence[str] = FIELDS) -> None:
        self.stream = stream
        self.fields = tuple(fields)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        self._csv.writerow(self.fields)
        self._header = True  # the header row is still in the buffer

    def text(self, results: Sequence[Result]) -> str:
        for result in results:
            record = project(result, self.fields)
            self._csv.writerow([_cell(record[f]) for f in self.fields])
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        self._header = False
        return text

    def close(self) -> None:
        if self._header:
            self.write_batch(())
