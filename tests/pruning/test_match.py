"""One sparsity axis: random copying another method's counts, and matching true reductions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topoprune.errors import TopopruneError
from topoprune.graphs import erdos_renyi, save_graph, watts_strogatz
from topoprune.graphs.io import graph_metadata
from topoprune.models import create_model
from topoprune.pruning import match_sparsity, prune
from topoprune.pruning.baselines import kept_units

INPUT = (3, 32, 32)


def test_random_copies_rgps_per_layer_kept_counts():
    rgp = prune(create_model("resnet20"), "rgp", 0.75, nodes=16, steps=100, seed=3)
    like = prune(
        create_model("resnet20"), "random", 0.75, like="rgp", like_options={"nodes": 16}, seed=3
    )
    assert like.masks.keys() == rgp.masks.keys()
    for name, mask in rgp.masks.items():
        assert int(like.masks[name].sum()) == int(mask.sum())
        assert not torch.equal(like.masks[name], mask)


def test_kernel_granularity_keeps_whole_slices_with_the_same_slice_counts():
    rgp = prune(create_model("resnet20"), "rgp", 0.75, nodes=16, steps=100)
    like = prune(
        create_model("resnet20"),
        "random",
        0.75,
        like="rgp",
        like_options={"nodes": 16, "steps": 100},
        granularity="kernel",
    )
    for name, mask in like.masks.items():
        slices = mask.flatten(2)
        assert bool((slices.all(dim=2) | ~slices.any(dim=2)).all())  # all or nothing per slice
        assert kept_units(mask, "kernel") == kept_units(rgp.masks[name], "kernel")


def test_random_copies_a_saved_result(tmp_path):
    saved = prune(create_model("resnet20"), "lattice", 0.75, nodes=16)
    saved.save(tmp_path / "lattice.pt")
    like = prune(create_model("resnet20"), "random", 0.75, like=str(tmp_path / "lattice.pt"))
    assert {k: int(v.sum()) for k, v in like.masks.items()} == {
        k: int(v.sum()) for k, v in saved.masks.items()
    }


def test_random_refuses_to_copy_itself():
    with pytest.raises(TopopruneError, match="cannot copy itself"):
        prune(create_model("resnet20"), "random", 0.5, like="random")


def test_rgp_matches_the_degree_whose_true_params_are_nearest():
    model = create_model("resnet20")
    found = match_sparsity(model, "rgp", "params", 0.9, {"nodes": 16}, input_size=INPUT)
    candidates = []
    for degree in range(2, 16, 2 if 16 % 2 else 1):
        sparsity = 1 - degree / 16
        result = prune(create_model("resnet20"), "lattice", sparsity, nodes=16, input_size=INPUT)
        candidates.append((abs(result.metrics["params_reduction"] - 0.9), sparsity))
    assert found.sparsity == min(candidates)[1]
    assert found.achieved == pytest.approx(0.9, abs=0.04)


def test_random_is_matched_by_bisection_to_a_fraction_of_macs():
    model = create_model("lenet5", in_channels=1)
    found = match_sparsity(model, "random", "macs", 0.6, input_size=(1, 28, 28))
    assert found.achieved == pytest.approx(0.6, abs=1e-3)
    assert found.sparsity > 0.6  # the dense first conv and classifier keep their MACs


def test_l1_is_matched_through_its_own_budget():
    model = create_model("lenet5", in_channels=1)
    found = match_sparsity(model, "l1", "params", 0.5, input_size=(1, 28, 28))
    assert found.overrides == {"target": "params", "removed": 0.5}
    assert 0.5 <= found.achieved < 0.6


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [("flops", 0.5, "match must be one of params, macs"), ("params", 1.0, "must lie in (0, 1)")],
)
def test_bad_match_requests_are_one_line(kind, target, message):
    with pytest.raises(TopopruneError, match=message.replace("(", r"\(").replace(")", r"\)")):
        match_sparsity(create_model("resnet20"), "random", kind, target, input_size=INPUT)


def test_an_unreachable_match_is_refused():
    with pytest.raises(TopopruneError, match="even at sparsity"):
        match_sparsity(
            create_model("lenet5", in_channels=1),
            "random",
            "params",
            0.99,
            input_size=(1, 28, 28),
            options={"layers": ["fc2"]},
        )


# -- irregular graphs ----------------------------------------------------------------------


def test_a_watts_strogatz_graph_prunes_and_reports_its_degrees(tmp_path):
    graph = watts_strogatz(16, 4, 0.3, seed=1)
    assert graph_metadata(graph)["k"] is None  # irregular
    path = tmp_path / "ws.npy"
    save_graph(path, graph)
    result = prune(create_model("resnet20"), "rgp", 0.75, graph=str(path))
    meta = result.metrics["graph"]
    assert meta["k"] is None and meta["degree_mean"] == 4.0
    degrees = graph.sum(axis=1)
    assert (meta["degree_min"], meta["degree_max"]) == (degrees.min(), degrees.max())
    assert result.metrics["nominal_reduction"] == pytest.approx(0.75)
    for row in result.layers:
        assert row["nodes"] == 16 and row["degree_mean"] == 4.0
    mask = result.masks["layer1.0.conv1"][:, :, 0, 0]
    assert torch.equal(mask, torch.from_numpy(graph.astype(bool)))  # 16 channels, 16 nodes
    assert int(mask.sum(dim=1)[0]) == degrees[0]


def _disconnected(n: int) -> np.ndarray:
    graph = np.zeros((n, n), dtype=np.uint8)
    half = n // 2
    for part in (range(half), range(half, n)):
        for i in part:
            for j in part:
                if i != j:
                    graph[i, j] = 1
    return graph


@pytest.mark.parametrize(
    ("graph", "sparsity", "options", "message"),
    [
        (_disconnected(16), 0.5, {}, "the given graph is disconnected"),
        (watts_strogatz(16, 4, 0.2, seed=0), 0.5, {}, "not sparsity 0.5: pass a matching"),
        (watts_strogatz(16, 4, 0.2, seed=0), 0.75, {"nodes": 32}, "has 16 nodes but nodes=32"),
        (erdos_renyi(40, 0.3, seed=0), 0.7, {}, "but layer layer1.0.conv1 has only 16 channels"),
    ],
)
def test_a_graph_that_does_not_fit_is_refused(graph, sparsity, options, message):
    model = create_model("resnet20")
    with pytest.raises(TopopruneError, match=message):
        prune(model, "rgp", sparsity, graph=graph, **options)
    assert not any(hasattr(m, "weight_mask") for m in model.modules())


def test_matching_counts_only_the_layers_the_call_masks():
    model = create_model("lenet5", in_channels=1)
    options = {"nodes": 6, "exclude": ["fc1"]}
    found = match_sparsity(model, "rgp", "params", 0.07, options, input_size=(1, 28, 28))
    assert found.achieved == pytest.approx(0.07, abs=0.01)  # fc1 (most params) stays dense
    plain = match_sparsity(model, "rgp", "params", 0.07, {"nodes": 6}, input_size=(1, 28, 28))
    assert plain.sparsity < found.sparsity and plain.achieved > 0.15


def test_a_given_graph_is_matched_at_its_own_sparsity(tmp_path):
    graph = watts_strogatz(16, 4, 0.2, seed=0)
    found = match_sparsity(
        create_model("resnet20"), "rgp", "params", 0.5, {"graph": graph}, input_size=INPUT
    )
    assert found.sparsity == pytest.approx(0.75)


def test_random_copies_only_methods_that_make_masks():
    with pytest.raises(TopopruneError, match="l1 made no masks to copy"):
        prune(create_model("resnet20"), "random", 0.5, like="l1", input_size=(3, 32, 32))
    with pytest.raises(TopopruneError, match="graphpruning searches widths and makes none"):
        prune(create_model("resnet20"), "random", 0.5, like="graphpruning")


def test_l1_refuses_layer_patterns_it_cannot_honour():
    with pytest.raises(TopopruneError, match="layers and exclude do not apply"):
        prune(create_model("lenet5", in_channels=1), "l1", 0.5, exclude=["fc1"])
