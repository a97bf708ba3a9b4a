"""Training checkpoints, written atomically (see :mod:`topoprune.files`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from topoprune.files import atomic_write


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically ``torch.save`` a checkpoint dictionary."""
    return atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`."""
    return torch.load(path, map_location=map_location, weights_only=False)
