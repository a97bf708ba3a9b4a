"""Training checkpoints, written atomically (see :mod:`topoprune.files`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
    path: str | Path,
    saved: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
    advice: str = "use the same model, widths and pruning, or a new --out",
) -> None:
    """Refuse a checkpoint of another model (other layers or shapes) before anything loads."""
    missing = [name for name in expected if name not in saved]
    extra = [name for name in saved if name not in expected]
    if missing or extra:
        name = (missing or extra)[0]
        where = "lacks" if missing else "has an extra"
        raise TopopruneError(f"{path} holds another model: it {where} {name!r}; {advice}")
    for name, tensor in expected.items():
        if tuple(saved[name].shape) != tuple(tensor.shape):
            raise TopopruneError(
                f"{path} holds another model: {name!r} is {tuple(saved[name].shape)} there, "
                f"{tuple(tensor.shape)} here; {advice}"
            )


def trained_state(source: str | Path | nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights to start from and their record: (state dict, {"source", "sha256"}).

    ``source``: a module, a run folder (its ``checkpoint.pt``), a training checkpoint, or a file
    holding a plain state dict (``torch.save(model.state_dict(), path)``). The digest covers
    every tensor, so a resumed run can tell that it starts from the same weights.

    >>> state, record = trained_state(nn.Linear(2, 1))
    >>> sorted(state), record["source"]
    (['bias', 'weight'], 'Linear')
    """
    if isinstance(source, nn.Module):
        state, name = source.state_dict(), type(source).__name__
    else:
        path = Path(source)
        if path.is_dir():
            path = path / "checkpoint.pt"
        if not path.is_file():
            raise TopopruneError(f"--from {source}: no such checkpoint or run folder")
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged or foreign file: one line
            raise TopopruneError(
                f"--from {path}: not a readable state dict or checkpoint ({err.__class__.__name__})"
            ) from None
        state = loaded.get("model", loaded) if isinstance(loaded, dict) else None
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise TopopruneError(f"--from {path}: holds no state dict of tensors")
        name = str(path)
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return {k: v.detach().cpu().clone() for k, v in state.items()}, {
        "source": name,
        "sha256": digest.hexdigest(),
    }
