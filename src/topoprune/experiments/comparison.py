"""The comparison's statistics: paired differences against a reference method, Holm-corrected,
and the Pareto front of accuracy against cost.

Every run of a bench has a seed, and a seed fixes the data order, the initialisation and the
split, so two methods' runs with the same seed are paired: :func:`paired_differences` takes, per
method and point, the differences ``acc(method, seed) − acc(reference, seed)`` over the seeds
both have, and tests their mean against 0 (a paired t-test). With many methods tested at once,
:func:`holm` controls the chance of any false "different" over the whole table (Holm 1979).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order; NaN stays NaN (not counted).

    The i-th smallest of m defined p-values is multiplied by (m − i + 1), then made
    non-decreasing and capped at 1.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    defined = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(sorted(defined)):
        running = max(running, min(1.0, (len(defined) - rank) * p))
        adjusted[index] = round(running, 12)
    return adjusted


def paired_t_p(differences: np.ndarray) -> float:
    """Two-sided p-value of a paired t-test that the mean of ``differences`` (n,) is 0.

    NaN below two pairs or when every difference is the same (no spread: no test).
    """
    if len(differences) < 2 or np.ptp(differences) == 0.0:
        return math.nan
    return float(stats.ttest_1samp(differences, 0.0).pvalue)


def paired_differences(rows: list[dict[str, Any]], reference: str) -> list[dict[str, Any]]:
    """Per (label, point) other than ``reference``'s and dense's: the paired differences in test
    accuracy against ``reference`` at the same point, in the rows' order.

    Each result has ``label``, ``sparsity``, ``pairs``, ``mean``, ``std`` (ddof 1), ``p`` (paired
    t-test) and ``p_holm`` (Holm over every result returned).

    >>> rows = [{"label": l, "sparsity": 0.9, "seed": s, "test_acc": a}
    ...     for l, s, a in [("random", 0, 90.0), ("random", 1, 91.0), ("random", 2, 92.0),
    ...                     ("rgp", 0, 91.0), ("rgp", 1, 92.5), ("rgp", 2, 93.0)]]
    >>> [(d["label"], d["pairs"], round(d["mean"], 3)) for d in paired_differences(rows, "random")]
    [('rgp', 3, 1.167)]
    """
    accuracy = {(r["label"], r["sparsity"], r["seed"]): r["test_acc"] for r in rows}
    cells = list(dict.fromkeys((r["label"], r["sparsity"]) for r in rows))
    found = []
    for label, point in cells:
        if label == reference or point == 0:
            continue
        seeds = sorted(
            seed
            for (other, where, seed) in accuracy
            if other == label and where == point and (reference, point, seed) in accuracy
        )
        if not seeds:
            continue
        differences = np.array(
            [accuracy[(label, point, s)] - accuracy[(reference, point, s)] for s in seeds]
        )
        found.append(
            {
                "label": label,
                "sparsity": point,
                "pairs": len(seeds),
                "mean": float(differences.mean()),
                "std": float(differences.std(ddof=1)) if len(seeds) > 1 else 0.0,
                "p": paired_t_p(differences),
            }
        )
    for row, adjusted in zip(found, holm([row["p"] for row in found]), strict=True):
        row["p_holm"] = adjusted
    return found


def pareto_front(cost: Sequence[float], accuracy: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats: none has lower-or-equal cost and
    higher-or-equal accuracy with one of them strict. Sorted by cost.

    >>> pareto_front([1.0, 2.0, 3.0, 2.5], [90.0, 95.0, 94.0, 96.0])
    [0, 1, 3]
    """
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -accuracy[i]))
    front, best = [], -math.inf
    for index in order:
        if accuracy[index] > best:
            front.append(index)
            best = accuracy[index]
    return front
