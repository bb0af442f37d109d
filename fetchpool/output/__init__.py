"""Output formats, one module each, behind the small `Writer` interface.

Only the main thread calls a writer, so lines never interleave.
"""

from __future__ import annotations

from typing import Protocol

from ..result import Result


class Writer(Protocol):
    """Receives every record as it completes, then `close()` once at the end."""

    def write(self, result: Result) -> None: ...

    def close(self) -> None: ...
