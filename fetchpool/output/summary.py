"""The run summary: `Summary` is `Stats`, kept under this name for the CLI's summary line.

`Summary().add(result)`, `.failed` and `.line(interrupted=...)` behave as before; the
counting, percentiles and `--summary-json` document live in `stats`.
"""

from __future__ import annotations

from .stats import Stats, outcome

Summary = Stats

__all__ = ["Summary", "outcome"]
