"""What :func:`topoprune.measure.count` returns: totals and one row per layer.

``macs`` are multiply-accumulates; ``flops`` is defined as ``2 × macs`` and is never measured
separately. The ``dense_*`` figures count the same model as if it carried no mask (nominal dense).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from topoprune.errors import TopopruneError

FLOPS_PER_MAC = 2


@dataclass(frozen=True)
class LayerCount:
    """Counts for one module: its own parameters (not its children's) and the MACs of its calls.

    ``masked`` is True when one of the module's parameters carries a pruning mask, or the module
    counts itself (a realized compact conv).
    """

    name: str
    type: str
    params: int
    macs: int
    dense_params: int
    dense_macs: int
    masked: bool


@dataclass(frozen=True)
class Counts:
    """Parameter and MAC counts of a model for one input of shape ``(1, *input_size)``.

    ``params``/``macs`` are mask-aware, ``dense_params``/``dense_macs`` ignore masks. ``layers``
    sums to the totals. ``uncounted`` names the modules that own parameters but have no MAC rule
    (their MACs are counted as 0).

    Example
    -------
    >>> counts = Counts(params=10, macs=40, dense_params=20, dense_macs=100, input_size=(3,))
    >>> counts.flops, counts.reduction()
    (80, {'params': 0.5, 'macs': 0.6})
    """

    params: int
    macs: int
    dense_params: int
    dense_macs: int
    input_size: tuple[int, ...]
    layers: list[LayerCount] = field(default_factory=list)
    uncounted: list[str] = field(default_factory=list)

    @property
    def flops(self) -> int:
        """FLOPs, defined as 2 × MACs (a multiply and an add per MAC)."""
        return FLOPS_PER_MAC * self.macs

    @property
    def dense_flops(self) -> int:
        """Dense FLOPs, defined as 2 × dense MACs."""
        return FLOPS_PER_MAC * self.dense_macs

    def reduction(self, baseline: Counts | None = None) -> dict[str, float]:
        """Fraction of params and of MACs removed (FLOPs fall by the MACs fraction).

        Relative to this model's own dense counts, or to ``baseline``'s (mask-aware) counts when
        given, e.g. the dense model a pruned, physically narrowed model came from.
        """
        base_params, base_macs = (
            (self.dense_params, self.dense_macs)
            if baseline is None
            else (baseline.params, baseline.macs)
        )
        if base_params == 0 or base_macs == 0:
            raise TopopruneError(
                "cannot compute a reduction against a baseline with 0 params or 0 MACs; "
                "pass the counts of a model that has both"
            )
        return {"params": 1 - self.params / base_params, "macs": 1 - self.macs / base_macs}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict, FLOPs included and labelled as 2 × MACs."""
        return {
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "dense_params": self.dense_params,
            "dense_macs": self.dense_macs,
            "dense_flops": self.dense_flops,
            "flops_definition": "2 * macs",
            "input_size": list(self.input_size),
            "layers": [asdict(layer) for layer in self.layers],
            "uncounted": list(self.uncounted),
        }
