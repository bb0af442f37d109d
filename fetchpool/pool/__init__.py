"""The one place concurrency lives: `scheduler` decides, `engines` run, `worker` fetches.

`run(items, options)` and `fetch(urls, options)` are the library's entry points; the
engine (threads, processes, ray) is `options.engine`, or processes from a Pool-API
factory given to `run`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..inputs import Item, parse
from ..options import Options
from ..result import Result
from .engines import Engine, PoolEngine, PoolFactory, ThreadEngine, make_engine
from .scheduler import Run

__all__ = ["Engine", "PoolEngine", "PoolFactory", "Run", "ThreadEngine", "fetch", "make_engine", "run"]


def run(items: Iterable[Item], options: Options | None = None, pool_factory: PoolFactory | None = None) -> Run:
    """Fetch already-parsed items (see `inputs`); iterate the returned Run for results.

    `pool_factory(processes, initializer, initargs)` builds a Pool to fetch in (such as a
    `multiprocessing` context's `Pool`); without one, `options.engine` decides.
    """
    options = options or Options()
    return Run(items, options, make_engine(options, pool_factory))


def fetch(urls: Iterable[str], options: Options | None = None) -> Iterator[Result]:
    """Fetch URL lines concurrently; yields one Result per non-blank, non-comment line."""
    options = options or Options()
    yield from run(parse(urls, "-", options.default_scheme, options.input_format), options)
