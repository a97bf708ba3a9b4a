"""Pruning methods behind one call: ``prune(model, method, sparsity, **options)``.

Every method is registered once (:mod:`topoprune.pruning.registry`) with its options and its
protocol; :func:`list_methods` lists them.
"""

from topoprune.pruning.api import Stage, prune, prune_progressively, pruning_stages
from topoprune.pruning.base import PruneResult, apply_masks
from topoprune.pruning.layers import PrunableLayer, prunable_layers
from topoprune.pruning.match import match_sparsity
from topoprune.pruning.registry import (
    PROTOCOLS,
    Method,
    PruneContext,
    Pruning,
    Stages,
    get_method,
    list_methods,
    option,
    register_method,
    unregister_method,
)

__all__ = [
    "PROTOCOLS",
    "Method",
    "PrunableLayer",
    "PruneContext",
    "PruneResult",
    "Pruning",
    "Stage",
    "Stages",
    "apply_masks",
    "get_method",
    "list_methods",
    "match_sparsity",
    "option",
    "prunable_layers",
    "prune",
    "prune_progressively",
    "pruning_stages",
    "register_method",
    "unregister_method",
]
