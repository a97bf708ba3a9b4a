"""Latencies of trained models, timed side by side after training, against one dense baseline.

:func:`time_side_by_side` takes the dense model and every trained model to compare, realizes the
masked ones (:func:`topoprune.compact.realize`), and times everything in one interleaved run
(:func:`topoprune.measure.latencies`), so that a slow spell of the machine hits every model alike
and every row shares one dense timing. The dense model is fused for inference (BatchNorm folded,
ReLU and residual adds in the convs) like the realized forms: the fair baseline. A model without
masks (physically narrower) is its own realized form, fused the same way.

>>> import torch
>>> from topoprune.models import create_model
>>> dense = create_model("lenet5", in_channels=1, seed=0)
>>> timed = time_side_by_side(dense, {"narrow": create_model("lenet5", 10, 1, [3, 8, 60, 42])},
...                           (1, 16, 16), batch=2, repeats=2)
>>> sorted(timed["narrow"].latency_ms)
['dense', 'realized']
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import nn

from topoprune.measure import latencies
from topoprune.measure.masks import is_masked

Key = TypeVar("Key", bound=Hashable)


@dataclass
class Timed:
    """One trained model's latencies (median ms: ``dense``, ``masked``, ``realized``; a dense
    run has ``dense`` only) and realize's choice per masked layer."""

    latency_ms: dict[str, float] = field(default_factory=dict)
    realize_choices: dict[str, str] = field(default_factory=dict)


def _is_masked(model: nn.Module) -> bool:
    return any(is_masked(module) for module in model.modules())


def time_side_by_side(
    dense: nn.Module,
    trained: Mapping[Key, nn.Module | None],
    input_size: Sequence[int],
    batch: int,
    *,
    repeats: int = 15,
) -> dict[Key, Timed]:
    """Latencies of ``dense`` and of every trained model (None: a dense run, timed as ``dense``)
    on ``(batch, *input_size)`` inputs, all in one interleaved run. Models are not modified."""
    from topoprune.compact import realize
    from topoprune.compact.fuse import fuse_for_inference

    models: dict[object, nn.Module] = {"dense": fuse_for_inference(dense)}
    results = {key: Timed() for key in trained}
    for key, model in trained.items():
        if model is None:
            continue
        if not _is_masked(model):
            models[(key, "realized")] = fuse_for_inference(model)
            continue
        example = torch.randn(batch, *input_size)
        realized = realize(model, example)  # a copy: the trained masked model stays as it is
        models.update({(key, "masked"): model, (key, "realized"): realized})
        results[key].realize_choices = {
            row.name: row.chosen for row in realized.realize_report.layers
        }
    timed = latencies(models, input_size, batch, repeats=repeats)
    for name, stats in timed.items():
        if name == "dense":
            for result in results.values():
                result.latency_ms["dense"] = stats.median_ms
        else:
            key, kind = name
            results[key].latency_ms[kind] = stats.median_ms
    return results
