"""`python -m fetchpool` runs the command line tool."""

from .cli import run_cli

run_cli()
