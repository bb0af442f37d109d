"""The `json` format (one JSON array, valid once closed) and atomic output files.

A reader of `-o FILE` must never see half a file: `atomic_path` writes a temporary file
next to the target and renames it over the target only when the run finished writing.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from ..result import FIELDS, Result
from .select import project


@contextmanager
def atomic_path(path: str | os.PathLike[str], newline: str | None = None) -> Iterator[TextIO]:
    """Yield a UTF-8 text stream whose content replaces `path` when the block ends cleanly.

    The temporary file lives in the target's own folder (so `os.replace` is an atomic
    rename on one filesystem, and nothing is written anywhere else); it gets the usual
    umask-based permissions, not mkstemp's 0600. On an exception it is removed and the
    target is left as it was. A symlink at `path` is replaced, not written through.
    """
    target = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(target)
    if os.path.isdir(target):
        raise IsADirectoryError(f"{path}: is a directory")
    fd, tmp = _create_temp(folder, name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _create_temp(folder: str, name: str) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def write_json(path: str | os.PathLike[str], document: Any) -> None:
    """Write one JSON document atomically (the `--summary-json` file)."""
    with atomic_path(path) as stream:
        json.dump(document, stream, indent=2, ensure_ascii=False)
        stream.write("\n")


class JsonArrayWriter:
    """Writes `[`, one record per line separated by commas, then `]` on close.

    Elements stream out as they come so memory stays flat; the document is valid JSON
    once `close()` ran (an interrupted run still closes, so it stays valid too).
    """

    def __init__(self, stream: TextIO, fields: Sequence[str] = FIELDS) -> None:
        self.stream = stream
        self.fields = tuple(fields)
        self._encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
        self._count = 0
        self._closed = False

    def write_batch(self, results: Sequence[Result]) -> None:
        for result in results:
            self.stream.write(("[\n" if self._count == 0 else ",\n") + self._encode(project(result, self.fields)))
            self._count += 1

    def write(self, result: Result) -> None:
        self.write_batch((result,))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stream.write("[]\n" if self._count == 0 else "\n]\n")
        self.stream.flush()
