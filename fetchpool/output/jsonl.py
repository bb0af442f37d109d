"""JSON lines: one compact object per record, written as it completes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TextIO

from ..result import FIELDS, Result
from . import write_lines

MAX_BATCH = 64


class JsonLinesWriter:
    """Writes each record on its own line.

    Lines are handed to the stream only whole (see `write_lines`), so a reader never sees
    half a line, even if the process is killed. A batch
    is kept only while another result is already waiting (`more_coming`): nobody ever
    waits on a finished record, and at high rates one system call carries many lines.
    """

    def __init__(
        self, stream: TextIO, more_coming: Callable[[], bool] = lambda: False, fields: Sequence[str] = FIELDS
    ) -> None:
        self.stream = stream
        self.more_coming = more_coming
        self.fields = None if tuple(fields) == FIELDS else tuple(fields)  # None: every key, in order
        self._encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
        self._batch: list[str] = []

    def write(self, result: Result) -> None:
        record = result.to_dict()
        if self.fields is not None:
            record = {name: record[name] for name in self.fields}
        self._batch.append(self._encode(record) + "\n")
        if len(self._batch) >= MAX_BATCH or not self.more_coming():
            self.flush()

    def flush(self) -> None:
        text = "".join(self._batch)
        self._batch.clear()
        write_lines(self.stream, text)

    def close(self) -> None:
        self.flush()
