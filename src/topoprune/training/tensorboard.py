"""``--tensorboard DIR``: stream every epoch's scalars (those of ``log.jsonl``) to TensorBoard.

TensorBoard is an optional dependency (``pip install tensorboard``); asking for it without the
package is one clear error before any work starts. Only rank 0 writes under torchrun.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from topoprune.errors import TopopruneError

EpochCallback = Any  # Callable[[int, dict[str, Any]], None]


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TopopruneError(
            "--tensorboard needs the tensorboard package: pip install tensorboard"
        ) from None
    return SummaryWriter


def check_tensorboard() -> None:
    """Refuse ``--tensorboard`` where the package is missing (call before any work)."""
    _summary_writer_class()


def scalar_writer(folder: str | Path) -> EpochCallback:
    """A trainer ``on_epoch_end`` callback writing each finite number of the epoch's log row
    (loss, accuracy, learning rate, seconds) as a scalar at step = the epoch number.

    On ranks other than 0 the callback does nothing.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        return lambda epoch, row: None
    writer = _summary_writer_class()(log_dir=str(folder))

    def write(epoch: int, row: dict[str, Any]) -> None:
        for name, value in row.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if name != "epoch" and number and math.isfinite(value):
                writer.add_scalar(name, value, row["epoch"])
        writer.flush()

    return write
