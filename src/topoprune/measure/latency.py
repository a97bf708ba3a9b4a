"""Wall-clock latency of a model's forward pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.measure.running import evaluating, example_input, forward
from topoprune.measure.timing import time_interleaved


@dataclass(frozen=True)
class LatencyStats:
    """Forward-pass times in milliseconds over ``repeats`` timed runs of one batch.

    ``std_ms`` is the sample standard deviation (0 for a single run); ``p10_ms``/``p90_ms`` are
    linear-interpolated percentiles. ``threads`` is torch's intra-op thread count at the time.
    """

    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p10_ms: float
    p90_ms: float
    batch: int
    repeats: int
    warmup: int
    device: str
    threads: int
    samples_ms: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Inputs per second at the median latency."""
        return self.batch * 1000.0 / self.median_ms

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict, throughput included."""
        return {**asdict(self), "throughput": self.throughput}


def _stats(samples_ms: list[float], **run: Any) -> LatencyStats:
    times = np.asarray(samples_ms)
    return LatencyStats(
        median_ms=float(np.median(times)),
        mean_ms=float(times.mean()),
        std_ms=float(times.std(ddof=1)) if times.size > 1 else 0.0,
        min_ms=float(times.min()),
        max_ms=float(times.max()),
        p10_ms=float(np.percentile(times, 10)),
        p90_ms=float(np.percentile(times, 90)),
        samples_ms=list(samples_ms),
        **run,
    )


def latency(
    model: nn.Module,
    input_size: Sequence[int],
    batch: int = 1,
    *,
    warmup: int = 3,
    repeats: int = 10,
    device: str | torch.device = "cpu",
) -> LatencyStats:
    """Time ``model`` on a ``(batch, *input_size)`` input under ``torch.inference_mode``.

    The model runs in eval mode (each module's mode is restored afterwards) and must already be on
    ``device``; on CUDA every run is synchronised before the clock is read. After the call a pruned
    module's recomputed ``weight`` is an inference tensor until its next forward.

    Example
    -------
    >>> import torch
    >>> stats = latency(torch.nn.Linear(8, 4), (8,), batch=2, warmup=1, repeats=3)
    >>> stats.repeats, stats.min_ms <= stats.median_ms <= stats.max_ms
    (3, True)
    """
    if batch < 1 or warmup < 0 or repeats < 1:
        raise TopopruneError(
            f"latency needs batch >= 1, warmup >= 0 and repeats >= 1; "
            f"got batch={batch}, warmup={warmup}, repeats={repeats}"
        )
    return _time_side_by_side({"model": model}, input_size, batch, warmup, repeats, device)["model"]


def latencies(
    models: Mapping[str, nn.Module],
    input_size: Sequence[int],
    batch: int = 1,
    *,
    warmup: int = 3,
    repeats: int = 15,
    device: str | torch.device = "cpu",
) -> dict[str, LatencyStats]:
    """Time several models side by side on one ``(batch, *input_size)`` input on ``device``.

    The models run in interleaved rounds (one call of each per round, see
    :func:`topoprune.measure.timing.time_interleaved`), so a slow spell of the machine hits them
    all alike: compare models with this, not with separate :func:`latency` calls. Each runs in
    eval mode under ``torch.inference_mode`` (modes restored afterwards); on CUDA every call is
    synchronised before the clock is read.

    >>> import torch
    >>> stats = latencies({"a": torch.nn.Linear(8, 4), "b": torch.nn.Linear(8, 2)}, (8,), 2)
    >>> sorted(stats), stats["a"].repeats
    (['a', 'b'], 15)
    """
    if batch < 1 or warmup < 0 or repeats < 1 or not models:
        raise TopopruneError(
            f"latencies needs models, batch >= 1, warmup >= 0 and repeats >= 1; "
            f"got {len(models)} models, batch={batch}, warmup={warmup}, repeats={repeats}"
        )
    return _time_side_by_side(models, input_size, batch, warmup, repeats, device)


def _time_side_by_side(
    models: Mapping[str, nn.Module],
    input_size: Sequence[int],
    batch: int,
    warmup: int,
    repeats: int,
    device: str | torch.device,
) -> dict[str, LatencyStats]:
    """The timing behind :func:`latency` and :func:`latencies`, on checked arguments."""
    inputs = {
        name: example_input(model, input_size, batch, device) for name, model in models.items()
    }
    x = next(iter(inputs.values()))
    synchronize = (lambda: torch.cuda.synchronize(x.device)) if x.is_cuda else None
    with ExitStack() as stack, torch.inference_mode():
        for model in models.values():
            stack.enter_context(evaluating(model))
        samples = time_interleaved(
            {
                name: (lambda m=model, x=inputs[name]: forward(m, x))
                for name, model in models.items()
            },
            repeats=repeats,
            warmup=warmup,
            synchronize=synchronize,
        )
    threads = torch.get_num_threads()
    return {
        name: _stats(
            values,
            batch=batch,
            repeats=repeats,
            warmup=warmup,
            device=str(x.device),
            threads=threads,
        )
        for name, values in samples.items()
    }
