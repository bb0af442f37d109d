"""`--save-dir DIR`: each body in a file of its own, named so that no two requests collide.

The name is a hash of method + full URL (+ the input's `id`), so `http://` and `https://`,
`GET` and `HEAD`, or two ids for one URL never overwrite each other, and a name taken
from a URL can never climb out of DIR (the hash is all hex; `paths.safe_join` checks it
anyway). A body is written to a temporary file beside its target and renamed only when
the fetch succeeded: no empty or half file for a failed fetch.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import secrets
from typing import Any

from .paths import safe_join

_EXTENSIONS = {
    "text/html": ".html",
    "text/plain": ".txt",
    "application/json": ".json",
    "text/css": ".css",
    "application/javascript": ".js",
    "text/javascript": ".js",
    "application/xml": ".xml",
    "text/xml": ".xml",
    "image/jpeg": ".jpg",
}


def file_name(method: str, url: str, id: Any = None, content_type: str | None = None) -> str:
    """`<24 hex>.<ext>`: the same request always gets the same name, different ones never."""
    key = f"{method.upper()} {url}"
    if id is not None:
        key += " " + json.dumps(id, sort_keys=True)
    stem = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return stem + extension(content_type)


def extension(content_type: str | None) -> str:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if not mime:
        return ".bin"
    return _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ".bin"


class BodyFile:
    """A body being written: `write` chunks, then `commit` (rename in place) or `discard`."""

    def __init__(self, folder: str, name: str) -> None:
        self.target = safe_join(folder, name)
        self._tmp = safe_join(folder, f".{name}.{secrets.token_hex(4)}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        self._fd = os.open(self._tmp, flags, 0o644)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def commit(self) -> str:
        os.close(self._fd)
        os.replace(self._tmp, self.target)
        return str(self.target)

    def discard(self) -> None:
        try:
            os.close(self._fd)
        finally:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
