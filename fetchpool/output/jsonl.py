"""JSON lines: one compact object per record, flushed as it completes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TextIO

from ..result import Result


class JsonLinesWriter:
    """Writes each record on its own line.

    `more_coming` says whether another result is already waiting; the flush is skipped
    then, since the next write follows at once. A reader never waits on a finished record.
    """

    def __init__(self, stream: TextIO, more_coming: Callable[[], bool] = lambda: False) -> None:
        self.stream = stream
        self.more_coming = more_coming
        self._encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode

    def write(self, result: Result) -> None:
        self.stream.write(self._encode(result.to_dict()) + "\n")
        if not self.more_coming():
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
