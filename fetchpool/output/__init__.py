"""Output formats, one module each, behind the small `Writer` interface.

Only the main thread calls a writer, so lines never interleave.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from typing import Protocol, TextIO

from ..result import Result


class Writer(Protocol):
    """Receives the records in batches (whatever the run has ready), then `close()` once."""

    def write_batch(self, results: Sequence[Result]) -> None: ...

    def close(self) -> None: ...


class LineWriter:
    """A line format: each batch is formatted whole, then written and flushed once.

    The run hands over everything that is ready at once, so at high rates one system call
    carries many lines, and a finished record never waits for a later one.
    """

    stream: TextIO

    def text(self, results: Sequence[Result]) -> str:
        raise NotImplementedError

    def write_batch(self, results: Sequence[Result]) -> None:
        text = self.text(results)
        if text:
            write_lines(self.stream, text)

    def write(self, result: Result) -> None:
        """One record: a batch of one."""
        self.write_batch((result,))

    def close(self) -> None:
        return None


PIPE_BUF = 4096  # POSIX: a pipe write of at most this many bytes is never split


def write_lines(stream: TextIO, text: str) -> None:
    """Write whole lines so that no reader ever sees half of one, even if we are killed.

    Through Python's buffers a line may be split across two system calls, and a SIGKILL
    between them (a full pipe makes that likely) leaves half a line behind. On a real file
    descriptor the lines go out in `os.write` calls of whole lines, each at most PIPE_BUF
    bytes where the lines allow it, which the kernel writes entirely or not at all.
    A file that fills up (a full disk, a size limit) may take only part of a write before
    the error: that part is cut off again, so the file ends with the last whole line.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd < 0:
        stream.write(text)
        stream.flush()
        return
    stream.flush()
    for chunk in _chunks(text.encode("utf-8")):
        done = 0
        try:
            while done < len(chunk):
                done += os.write(fd, chunk[done:])
        except OSError:
            if done:
                _cut(fd, done)
            raise


def _cut(fd: int, written: int) -> None:
    """Take the last `written` bytes off a regular file (best effort: the error is raised anyway)."""
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR) - written)
    except OSError:
        pass


class WholeLines:
    """A text stream that passes on only whole lines, through `write_lines`.

    For the writers that do not write line by line (Rich's plain table, the JSON array):
    a full disk or a kill then leaves no half row behind. The end of a line still being
    written waits for its newline; the JSON array's closing `]` ends with one.
    """

    encoding = "utf-8"

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        pending = self._pending + text
        cut = pending.rfind("\n") + 1
        self._pending = pending[cut:]
        if cut:
            write_lines(self.stream, pending[:cut])
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


def _chunks(data: bytes) -> Iterator[bytes]:
    """Split `data` at line ends into pieces of at most PIPE_BUF bytes (a longer line: alone)."""
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + PIPE_BUF) + 1
        if end <= start:  # one line longer than PIPE_BUF
            end = data.find(b"\n", start) + 1 or len(data)
        yield data[start:end]
        start = end
