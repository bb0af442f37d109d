"""The ray engine: the processes engine on `ray.util.multiprocessing.Pool`, for a cluster.

Ray is imported only here, only when `--engine ray` is chosen; without it the user gets
one line naming the extra to install. Facts of Ray's Pool this relies on (checked in its
source, `python/ray/util/multiprocessing/pool.py`): its actors reserve `num_cpus=0`; the
initializer runs in the actor's `__init__`, which the Pool waits for (`ping`), so it must
return (here it starts serving on a thread); it cannot set module globals (#37705), which
nothing here needs; and the Pool never calls `ray.shutdown()`, so a Ray this run started
is shut down here. Ray does not restart a dead actor: the run goes on with the others.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from ..options import Options, OptionsError

EXTRA = "pip install 'fetchpool[ray]'"


def check_ray() -> None:
    """Raise a usage-level error when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise OptionsError(f"--engine ray needs Ray, which is not installed: {EXTRA}")


class RayPools:
    """A Pool-API factory over Ray: joins `address`, or starts a local Ray for the run."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.started = False

    def __call__(self, processes: int, initializer: Any, initargs: tuple[Any, ...]) -> Any:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report from a run
        import ray
        from ray.util.multiprocessing import Pool

        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=processes,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                    configure_logging=False,
                )
                self.started = True
        return _Stopping(Pool(processes, initializer=initializer, initargs=initargs), self)


class _Stopping:
    """Ray's Pool, whose `terminate` also shuts down a Ray this run started."""

    def __init__(self, pool: Any, owner: RayPools) -> None:
        self.pool, self.owner = pool, owner

    def terminate(self) -> None:
        import ray

        self.pool.terminate()
        if self.owner.started:
            ray.shutdown()
            self.owner.started = False


def ray_engine(options: Options) -> Any:
    check_ray()
    from .engines import PoolEngine

    return PoolEngine(options, RayPools(options.ray_address), network=True)
