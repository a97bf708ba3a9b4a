"""Pruning methods behind one call: ``prune(model, method=..., sparsity=..., **options)``."""

from topoprune.pruning.api import METHODS, prune
from topoprune.pruning.base import PruneResult, apply_masks
from topoprune.pruning.layers import PrunableLayer, prunable_layers

__all__ = ["METHODS", "PrunableLayer", "PruneResult", "apply_masks", "prunable_layers", "prune"]
