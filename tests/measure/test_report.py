"""format_counts() and the Counts helpers (FLOPs, reduction, to_dict)."""

import json

import pytest
from torch import nn
from torch.nn.utils import prune

from topoprune.errors import TopopruneError
from topoprune.measure import Counts, count, format_counts


def test_flops_are_twice_macs():
    counts = Counts(params=1, macs=21, dense_params=2, dense_macs=50, input_size=(3,))
    assert (counts.flops, counts.dense_flops) == (42, 100)


def test_reduction_against_own_dense_and_against_a_baseline():
    pruned = Counts(params=25, macs=300, dense_params=100, dense_macs=1000, input_size=(3,))
    baseline = Counts(params=200, macs=1200, dense_params=200, dense_macs=1200, input_size=(3,))
    assert pruned.reduction() == {"params": 0.75, "macs": 0.7}
    assert pruned.reduction(baseline) == {"params": 0.875, "macs": 0.75}


def test_reduction_against_an_empty_baseline_raises():
    empty = Counts(params=0, macs=0, dense_params=0, dense_macs=0, input_size=(3,))
    with pytest.raises(TopopruneError, match="0 params or 0 MACs"):
        empty.reduction()


def test_to_dict_round_trips_through_json():
    linear = nn.Linear(4, 2)
    prune.custom_from_mask(linear, "weight", (nn.init.eye_(linear.weight.detach().clone()) > 0))
    record = json.loads(json.dumps(count(linear, (4,)).to_dict()))
    assert record["params"] == 2 + 2 and record["dense_params"] == 10
    assert record["macs"] == 2 and record["flops"] == 4 and record["dense_flops"] == 16
    assert record["flops_definition"] == "2 * macs"
    assert record["input_size"] == [4]
    assert record["layers"] == [
        {
            "name": "",
            "type": "Linear",
            "params": 4,
            "macs": 2,
            "dense_params": 10,
            "dense_macs": 8,
            "masked": True,
        }
    ]


def test_format_counts_table_and_totals():
    model = nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.Flatten(), nn.Linear(4, 3))
    prune.custom_from_mask(model[0], "weight", (nn.init.ones_(model[0].weight.detach().clone())))
    text = format_counts(count(model, (2, 3, 3)))
    assert text.splitlines() == [
        "layer  type    params  dense params  MACs  dense MACs  masked",
        "0      Conv2d      72            72    72          72     yes",
        "2      Linear      15            15    12          12",
        "",
        "params                     0.000 M of 0.000 M dense, 0.00% removed",
        "MACs                       0.000 M of 0.000 M dense, 0.00% removed",
        "FLOPs (= 2 x MACs)         0.000 M of 0.000 M dense, 0.00% removed",
    ]


def test_format_counts_switches_macs_to_giga_and_notes_uncounted():
    counts = Counts(
        params=5_000_000,
        macs=1_500_000_000,
        dense_params=10_000_000,
        dense_macs=3_000_000_000,
        input_size=(3, 224, 224),
        uncounted=["head.norm"],
    )
    assert format_counts(counts, layers=False).splitlines() == [
        "params                     5.000 M of 10.000 M dense, 50.00% removed",
        "MACs                       1.500 G of 3.000 G dense, 50.00% removed",
        "FLOPs (= 2 x MACs)         3.000 G of 6.000 G dense, 50.00% removed",
        "MACs not counted (no rule) for: head.norm",
    ]
