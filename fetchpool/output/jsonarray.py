"""The `json` format (one JSON array, valid once closed) and atomic output files.

A reader of `-o FILE` must never see half a file: `atomic_path` writes a temporary file
next to the target and renames it over the target only when the run finished writing.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from ..result import FIELDS, Result
from .select import project


@contextmanager
def atomic_path(path: str | os.PathLike[str], newline: str | None = None) -> Iterator[TextIO]:
    """Yield a UTF-8 text stream whose content replaces `path` when the block ends cleanly.

    The new content is written to a file with no name yet (`O_TMPFILE`) in the target's
    own folder, given a name and renamed over the target only at the end: a run that
    fails leaves nothing behind, even when the folder became unwritable meanwhile, and
    the target as it was. Where the filesystem lacks `O_TMPFILE`, a hidden named file
    stands in and is removed on failure. The file gets the usual umask-based permissions.
    A symlink at `path` is replaced, not written through; but a device, FIFO or socket,
    or a name under /dev or /proc (`/dev/null`, `/dev/stdout`), is written directly:
    replacing it is never what is meant.
    """
    target = os.path.abspath(os.fspath(path))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, f"{path}: is a directory")
    if _special(target):
        with open(target, "w", encoding="utf-8", newline=newline) as direct:
            yield direct
        return
    folder, name = os.path.split(target)
    dirfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    tmp: str | None = None
    try:
        fd, tmp = _create_temp(folder, name, dirfd)
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
            tmp = tmp or _link_temp(fd, name, dirfd)
        os.replace(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp, dir_fd=dirfd)
            except OSError:
                pass
        raise
    finally:
        os.close(dirfd)


def _special(target: str) -> bool:
    """A device, FIFO or socket, a link to one, or a name under /dev or /proc (`/dev/stdout`)."""
    if target.startswith(("/dev/", "/proc/")):
        return True
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


_FLAGS = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)


def _create_temp(folder: str, name: str, dirfd: int) -> tuple[int, str | None]:
    """An unnamed file in `folder` (name None), or a hidden named one where that is not supported."""
    if hasattr(os, "O_TMPFILE"):
        try:
            return os.open(folder, _FLAGS | os.O_TMPFILE, 0o666), None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                raise
    while True:
        tmp = _temp_name(name)
        try:
            return os.open(tmp, _FLAGS | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=dirfd), tmp
        except FileExistsError:
            continue


def _link_temp(fd: int, name: str, dirfd: int) -> str:
    """Give the unnamed file a hidden name next to the target, ready to be renamed over it."""
    while True:
        tmp = _temp_name(name)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, dst_dir_fd=dirfd, follow_symlinks=True)
            return tmp
        except FileExistsError:
            continue


def _temp_name(name: str) -> str:
    return f".{name}.{secrets.token_hex(4)}.tmp"


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
