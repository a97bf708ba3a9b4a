"""Timing candidates side by side, in interleaved rounds so that load drift hits them all."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np


def medians(samples: Mapping[str, list[float]]) -> dict[str, float]:
    """The median of each sample list, in the same order."""
    return {name: float(np.median(values)) for name, values in samples.items()}


def time_interleaved(
    functions: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    *,
    drop_factor: float | None = None,
    drop_after: int = 3,
    synchronize: Callable[[], object] | None = None,
) -> dict[str, list[float]]:
    """Milliseconds per call of each function, taken round-robin: up to ``repeats`` samples each.

    Every function first runs ``warmup`` times; then each round calls every remaining function
    once, in turn, so a slow spell of the machine is shared by all candidates rather than hitting
    one. With ``drop_factor``, from round ``drop_after`` on, a function whose median so far
    exceeds ``drop_factor`` times the best median stops being timed (it cannot win); its samples
    so far are kept. ``synchronize`` (``torch.cuda.synchronize`` for GPU work) is called before
    the clock starts and before it stops, so that queued kernels are timed.

    >>> samples = time_interleaved({"a": lambda: sum(range(100)), "b": lambda: None}, repeats=3)
    >>> sorted(samples), len(samples["a"])
    (['a', 'b'], 3)
    """
    wait = synchronize or (lambda: None)
    for function in functions.values():
        for _ in range(warmup):
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    running = dict(functions)
    for round_number in range(1, repeats + 1):
        for name, function in running.items():
            wait()
            start = time.perf_counter()
            function()
            wait()
            samples[name].append((time.perf_counter() - start) * 1000.0)
        if drop_factor is not None and round_number >= drop_after:
            current = medians({name: samples[name] for name in running})
            limit = drop_factor * min(current.values())
            running = {name: running[name] for name in running if current[name] <= limit}
    return samples
