"""fetchpool: fetch many URLs concurrently, one result record per input line.

The library API has no Click or Rich in it::

    from fetchpool import fetch, Options
    for result in fetch(["http://127.0.0.1:8000/"], Options(concurrency=8)):
        print(result.status, result.url)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .options import Options, OptionsError  # noqa: E402
from .pool import fetch, run  # noqa: E402
from .result import ErrorKind, Result  # noqa: E402

__all__ = ["ErrorKind", "Options", "OptionsError", "Result", "__version__", "fetch", "run"]
