"""topoprune: topology-driven neural-network pruning.

The top-level names are loaded lazily so that ``import topoprune.graphs`` stays numpy-only
(it never imports torch).
"""

from importlib import import_module
from typing import Any

from topoprune.errors import TopopruneError

__version__ = "0.1.0"

_LAZY = {
    "create_model": "topoprune.models",
    "list_models": "topoprune.models",
    "load_dataset": "topoprune.data",
    "count": "topoprune.measure",
    "latency": "topoprune.measure",
    "train": "topoprune.training",
    "prune": "topoprune.pruning",
    "PruneResult": "topoprune.pruning",
    "realize": "topoprune.compact",
    "TrainConfig": "topoprune.training",
}

__all__ = ["TopopruneError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'topoprune' has no attribute {name!r}")
