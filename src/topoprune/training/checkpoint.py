"""Training checkpoints, written atomically (see :mod:`topoprune.files`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from topoprune.errors import TopopruneError
from topoprune.files import atomic_write

CHECKPOINT_KEYS = ("epoch", "config", "model", "optimizer", "scaler", "history")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically ``torch.save`` a checkpoint dictionary."""
    return atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint written by :func:`save_checkpoint`.

    A truncated, empty or foreign file is one :class:`TopopruneError` line, never a traceback.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many kinds on a damaged file: name it in one line
        raise TopopruneError(
            f"{path} is not a readable checkpoint ({err.__class__.__name__}): "
            "delete it to start over, or use a new --out"
        ) from None
    if not isinstance(state, dict) or not all(key in state for key in CHECKPOINT_KEYS):
        raise TopopruneError(f"{path} is not a topoprune training checkpoint")
    return state


def check_model_state(
    path: str | Path, saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> None:
    """Refuse a checkpoint of another model (other layers or shapes) before anything loads."""
    missing = [name for name in expected if name not in saved]
    extra = [name for name in saved if name not in expected]
    if missing or extra:
        name = (missing or extra)[0]
        where = "lacks" if missing else "has an extra"
        raise TopopruneError(
            f"{path} holds another model: it {where} {name!r}; use the same model, widths and "
            "pruning, or a new --out"
        )
    for name, tensor in expected.items():
        if tuple(saved[name].shape) != tuple(tensor.shape):
            raise TopopruneError(
                f"{path} holds another model: {name!r} is {tuple(saved[name].shape)} there, "
                f"{tuple(tensor.shape)} here; use the same model and widths, or a new --out"
            )
