"""JSON lines: one compact object per record, written as it completes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from ..result import FIELDS, Result
from . import LineWriter


class JsonLinesWriter(LineWriter):
    """Writes each record on its own line.

    Lines are handed to the stream only whole (see `write_lines`), so a reader never sees
    half a line, even if the process is killed.
    """

    def __init__(self, stream: TextIO, fields: Sequence[str] = FIELDS) -> None:
        self.stream = stream
        self.fields = None if tuple(fields) == FIELDS else tuple(fields)  # None: every key, in order
        self._encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode

    def text(self, results: Sequence[Result]) -> str:
        encode, fields = self._encode, self.fields
        if fields is None:
            return "".join([encode(r.to_dict()) + "\n" for r in results])
        return "".join([encode({name: r.to_dict()[name] for name in fields}) + "\n" for r in results])
