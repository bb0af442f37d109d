"""fetchpool: fetch many URLs concurrently, one result record per input line.

The library API has no Click or Rich in it::

    from fetchpool import fetch, Options
    for result in fetch(["http://127.0.0.1:8000/"], Options(concurrency=8)):
        print(result.status, result.url)
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

__all__ = ["ErrorKind", "Options", "OptionsError", "Result", "__version__", "fetch", "run"]

# Imported on first use, so `fetchpool --version` and `--help` do not pay for requests.
_LAZY = {
    "Options": "options",
    "OptionsError": "options",
    "fetch": "pool",
    "run": "pool",
    "ErrorKind": "result",
    "Result": "result",
}

if TYPE_CHECKING:
    from .options import Options, OptionsError
    from .pool import fetch, run
    from .result import ErrorKind, Result


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fetchpool' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
