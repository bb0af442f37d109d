"""Inputs and outputs that fail in one clear line: which file, which OS error.

An OS error while reading a FILE or writing `-o`, `--summary-json` or stdout is not a bug
and not a failed URL: it becomes `StreamError` ("cannot write 'out.json': No space left
on device"), which the CLI prints alone and turns into exit status 74. A broken pipe is
left as it is: that is a reader that went away, and has its own quiet exit.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

STDIN, STDOUT = "stdin", "stdout"


class StreamError(Exception):
    """Reading or writing `name` failed; `str()` is the whole line for the user."""

    def __init__(self, verb: str, name: str, error: OSError) -> None:
        self.name = name
        shown = name if name in (STDIN, STDOUT) else repr(name)
        super().__init__(f"cannot {verb} {shown}: {error.strerror or error}")


@contextmanager
def naming(verb: str, name: str) -> Iterator[None]:
    """Turn an OS error (but a broken pipe) inside the block into a `StreamError` for `name`."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise StreamError(verb, name, exc) from exc


@contextmanager
def naming_own(verb: str, name: str, manager: AbstractContextManager[T]) -> Iterator[T]:
    """Enter and leave `manager` (an atomic output) naming its own OS errors as `naming` does.

    Errors raised by the block itself pass through as they are: they belong to whatever
    raised them, not to this file.
    """
    with naming(verb, name):
        value = manager.__enter__()
    try:
        yield value
    except BaseException as exc:
        try:
            suppressed = manager.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException as cleanup:
            if cleanup is exc:
                raise
            raise exc from None  # closing after an error failed too: the first error is the news
        if not suppressed:
            raise
    else:
        with naming(verb, name):
            manager.__exit__(None, None, None)


class Closed:
    """Stands for a standard stream that was closed when the process started.

    Python then sets `sys.stdin` or `sys.stdout` to None; this says so on first use
    instead of an AttributeError somewhere deep in a run.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def error(self, verb: str) -> StreamError:
        return StreamError(verb, self.name, OSError(errno.EBADF, os.strerror(errno.EBADF)))

    def _fail(self, *args: Any) -> Any:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    read = readline = write = fileno = _fail

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


class Discard:
    """Stands for a closed stderr: there is nowhere to say anything, so nothing is said."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


class Tolerant:
    """stderr as the command uses it: what it cannot take (closed, full) is dropped, not raised.

    Messages for the person are never a reason to fail a run or to change its exit status.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text) if self.stream is not None else len(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            if self.stream is not None:
                self.stream.flush()
        except (OSError, ValueError):
            pass

    def isatty(self) -> bool:
        try:
            return self.stream is not None and bool(self.stream.isatty())
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str) -> Any:
        if self.stream is None:
            raise AttributeError(name)
        return getattr(self.stream, name)


class Guarded:
    """A writer whose OS errors name its destination (`-o FILE` or stdout)."""

    def __init__(self, writer: Any, name: str) -> None:
        self.writer = writer
        self.name = name
        self.writing_since: float | None = None  # when the write under way began: a reader that stopped reading

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self.writing_since = time.monotonic()
        try:
            with naming("write", self.name):
                yield
        finally:
            self.writing_since = None

    def write_batch(self, results: Any) -> None:
        with self._writing():
            self.writer.write_batch(results)

    def flush(self) -> None:
        flush = getattr(self.writer, "flush", None)
        if flush is not None:
            with self._writing():
                flush()

    def close(self) -> None:
        with self._writing():
            self.writer.close()
