"""The comparison's statistics: Holm's adjustment, paired differences, Pareto fronts, and the
report sections and document they make."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from topoprune.experiments.comparison import holm, paired_differences, pareto_front


def test_holm_by_hand():
    # sorted 0.001, 0.01, 0.02, 0.04 times 4, 3, 2, 1 -> 0.004, 0.03, 0.04, 0.04 (kept monotone)
    assert holm([0.02, 0.001, 0.04, 0.01]) == [0.04, 0.004, 0.04, 0.03]
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    adjusted = holm([math.nan, 0.01, 0.02])  # a missing test is not counted
    assert math.isnan(adjusted[0]) and adjusted[1:] == [0.02, 0.02]


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(p_values):
    adjusted = holm(p_values)
    assert all(a >= p - 1e-12 and a <= 1.0 for a, p in zip(adjusted, p_values, strict=True))
    order = np.argsort(p_values, kind="stable")
    assert all(np.diff(np.array(adjusted)[order]) >= -1e-12)


def _rows(label, point, accuracies):
    return [
        {"label": label, "sparsity": point, "seed": seed, "test_acc": acc}
        for seed, acc in enumerate(accuracies)
    ]


def test_paired_differences_are_scipys_paired_t_test_with_holm_over_the_table():
    random_a, rgp_a = [90.0, 91.0, 93.0], [91.0, 92.5, 93.5]
    random_b, snip_b = [80.0, 82.0, 81.0], [78.0, 81.0, 81.5]
    rows = [
        *_rows("dense", 0.0, [99.0, 99.0, 99.0]),
        *_rows("random", 0.5, random_a),
        *_rows("rgp", 0.5, rgp_a),
        *_rows("random", 0.9, random_b),
        *_rows("snip", 0.9, snip_b),
        *_rows("rgp", 0.9, [70.0, 72.0]),  # one seed fewer: two pairs
    ]
    found = {(d["label"], d["sparsity"]): d for d in paired_differences(rows, "random")}
    assert set(found) == {("rgp", 0.5), ("snip", 0.9), ("rgp", 0.9)}
    rgp = found[("rgp", 0.5)]
    assert rgp["pairs"] == 3 and rgp["mean"] == pytest.approx(1.0)
    assert rgp["std"] == pytest.approx(np.std([1.0, 1.5, 0.5], ddof=1))
    assert rgp["p"] == pytest.approx(stats.ttest_rel(rgp_a, random_a).pvalue)
    assert found[("rgp", 0.9)]["pairs"] == 2 and found[("rgp", 0.9)]["mean"] == -10.0
    assert math.isnan(found[("rgp", 0.9)]["p"])  # no spread in the differences: no test
    p_values = [found[k]["p"] for k in (("rgp", 0.5), ("snip", 0.9))]
    assert [found[k]["p_holm"] for k in (("rgp", 0.5), ("snip", 0.9))] == holm(p_values)


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 20)), min_size=1, max_size=15))
def test_the_pareto_front_holds_exactly_the_points_nothing_beats(points):
    cost = [float(c) for c, _ in points]
    accuracy = [float(a) for _, a in points]
    front = set(pareto_front(cost, accuracy))

    def beaten(i):
        return any(
            cost[j] <= cost[i]
            and accuracy[j] >= accuracy[i]
            and (cost[j] < cost[i] or accuracy[j] > accuracy[i])
            for j in range(len(points))
        )

    for i in range(len(points)):
        if beaten(i):
            assert i not in front
    # every point is beaten by, or ties with, a point of the front
    for i in range(len(points)):
        assert any(cost[j] <= cost[i] and accuracy[j] >= accuracy[i] for j in front)
