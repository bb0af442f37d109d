"""The ray engine: the processes engine on `ray.util.multiprocessing.Pool`, for a cluster.

Ray is imported only here, only when `--engine ray` is chosen; without it the user gets
one line naming the extra to install.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ..options import Options, OptionsError

EXTRA = "pip install 'fetchpool[ray]'"


def check_ray() -> None:
    """Raise a usage-level error when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise OptionsError(f"--engine ray needs Ray, which is not installed: {EXTRA}")


def ray_engine(options: Options) -> Any:
    check_ray()
    raise OptionsError("--engine ray is not available in this version yet")
