"""`python -m fetchpool` runs the command line tool; `main` is also the console script's entry."""

from __future__ import annotations

import os
import signal
from typing import Any

INTERRUPTED = 130  # app.ExitCode.INTERRUPTED, not imported: importing it is what takes time here


def main() -> None:
    """Run the command; Ctrl-C from its first moment ends it with 130 and no traceback.

    The handler goes in before the command's modules are imported (click and the rest take
    a tenth of a second), and `run_cli` keeps it until the run installs its own.
    """
    signal.signal(signal.SIGINT, _interrupted)
    from .cli import run_cli

    run_cli()


def _interrupted(signum: int, frame: Any) -> None:
    os._exit(INTERRUPTED)


if __name__ == "__main__":
    main()
