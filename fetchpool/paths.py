"""Paths the tool writes to: never outside the folder they belong in.

A name that comes from outside (a URL path, a header, an input line) must not climb out
of its folder with `..`, an absolute path, or a symlink pointing elsewhere.
"""

from __future__ import annotations

from pathlib import Path


class UnsafePath(ValueError):
    """The name would put a file outside its folder."""


def safe_join(folder: str | Path, name: str) -> Path:
    """`folder/name`, resolved, guaranteed to lie inside `folder` (symlinks included)."""
    if not name or "\x00" in name:
        raise UnsafePath(f"unusable file name {name!r}")
    root = Path(folder).resolve()
    candidate = Path(name)
    if candidate.is_absolute() or candidate.drive:
        raise UnsafePath(f"absolute path not allowed: {name!r}")
    target = (root / candidate).resolve()
    if target == root or root not in target.parents:
        raise UnsafePath(f"{name!r} escapes {str(root)!r}")
    return target
