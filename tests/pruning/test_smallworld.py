"""Small-world structural pruning: true params met, every unit linked, kernel-slice masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from topoprune.errors import TopopruneError
from topoprune.graphs.layered import local_block
from topoprune.models import create_model
from topoprune.pruning import PruneResult, prune
from topoprune.pruning.smallworld import mask_topology, unit_blocks

MNIST = (1, 28, 28)


def caffe(**options):
    model = create_model("lenet5-caffe", in_channels=1, seed=0)
    result = prune(model, "smallworld", 0.977, input_size=MNIST, **options)
    return model, result


def test_lenet5_caffe_keeps_2_3_percent_of_its_params():
    model, result = caffe(topology=False)
    assert result.metrics["dense_params"] == 431_080
    assert abs(result.metrics["params_reduction"] - 0.977) <= 0.003
    assert set(result.masks) == {"conv1", "conv2", "fc1", "fc2"}  # the ends are masked too


def test_vgg16_keeps_9_02_percent_of_its_params():
    model = create_model("vgg16", seed=0)
    result = prune(model, "smallworld", 1 - 0.0902, input_size=(3, 32, 32), topology=False)
    assert abs(result.metrics["params_reduction"] - (1 - 0.0902)) <= 0.003


def test_every_unit_keeps_an_input_and_an_output_and_masks_are_whole_links():
    model, result = caffe(topology=False)
    fc1 = result.masks["fc1"].view(500, 50, 16)
    assert bool((fc1.all(dim=2) | ~fc1.any(dim=2)).all())  # a channel links through all 16
    conv2 = result.masks["conv2"].flatten(2)
    assert bool((conv2.all(dim=2) | ~conv2.any(dim=2)).all())  # whole kernel slices
    for name, (out_units, in_units) in {
        "conv2": (50, 20),
        "fc1": (500, 50),
        "fc2": (10, 500),
    }.items():
        block = result.masks[name].reshape(out_units, in_units, -1).any(dim=2)
        assert bool(block.any(dim=0).all()) and bool(block.any(dim=1).all())
    for row in result.layers:
        assert (
            int(result.masks[row["name"]].reshape(*row["units"][::-1], -1).any(dim=2).sum())
            == row["links"]
        )


def test_without_rewiring_the_links_are_local_and_seeds_replay():
    _, local = caffe(rewire_p=0.0, topology=False)
    block = local.masks["fc2"].numpy()
    assert np.array_equal(block, local_block(500, 10, int(block.sum())))
    _, again = caffe(rewire_p=0.3, topology=False, seed=4)
    _, same = caffe(rewire_p=0.3, topology=False, seed=4)
    _, other = caffe(rewire_p=0.3, topology=False, seed=5)
    assert all(torch.equal(again.masks[k], same.masks[k]) for k in again.masks)
    assert not all(torch.equal(again.masks[k], other.masks[k]) for k in again.masks)


def test_keep_ends_and_the_uniform_rule():
    model = create_model("lenet5-caffe", in_channels=1)
    result = prune(model, "smallworld", 0.9, keep_ends=True, density="uniform", topology=False)
    assert set(result.masks) == {"conv2", "fc1"}
    kept = [row["kept"] for row in result.layers]
    assert max(kept) - min(kept) < 0.01


def test_a_sparsity_beyond_one_link_per_unit_is_refused():
    with pytest.raises(TopopruneError, match="smallworld can remove at most 0.93"):
        prune(create_model("lenet5", in_channels=1), "smallworld", 0.977)


def test_topology_is_reported_json_safe_and_sigma_needs_triangles():
    _, result = caffe(topology_samples=1)
    topology = result.metrics["topology"]
    json.dumps(topology, allow_nan=False)
    assert topology["triangle_clustering"] == 0.0 and topology["sigma"] is None
    assert topology["square_clustering"] > 0 and topology["sigma_square"] is not None
    assert topology["nodes"] == 1 + 20 + 50 + 500 + 10


def test_rgp_and_random_masks_read_as_the_same_layered_graph():
    model = create_model("lenet5-caffe", in_channels=1)
    rgp = prune(model, "rgp", 0.9, nodes=20, steps=100)
    topology = mask_topology(model, rgp.masks, samples=1)
    assert topology["chain"] and topology["nodes"] == 581
    blocks = unit_blocks(rgp.masks, [])
    assert blocks == []
    projected = create_model("cresnet18")  # its projection shortcuts do not chain
    assert mask_topology(projected, {}) == {"chain": False}


def test_cross_layer_links_become_masked_skip_projections_that_replay(tmp_path):
    model = create_model("lenet5", in_channels=1, seed=0)
    result = prune(model, "smallworld", 0.8, cross_layer=True, rewire_p=0.5, topology_samples=1)
    assert result.skips and all(spec["target"] in ("fc2", "fc3") for spec in result.skips)
    skip = model.skip_projections[0].linear
    assert torch.equal(skip.weight_mask.bool(), result.masks["skip_projections.0.linear"])
    links_in_blocks = sum(row["links"] for row in result.layers)
    skip_links = sum(result.metrics["skip_links"].values())
    _, plain = caffe_free(model_name="lenet5", sparsity=0.8)
    assert links_in_blocks + skip_links == sum(row["links"] for row in plain.layers)
    assert result.metrics["topology"]["triangle_clustering"] > 0
    assert result.metrics["topology"]["sigma"] is not None
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        out = model(x)
        saved = [s.linear.weight_orig.clone() for s in model.skip_projections]
        for projection in model.skip_projections:
            projection.linear.weight_orig.zero_()
        assert not torch.allclose(model(x), out)  # the skips take part in the forward pass
        for projection, weight in zip(model.skip_projections, saved, strict=True):
            projection.linear.weight_orig.copy_(weight)
    result.save(tmp_path / "sw.pt")
    fresh = create_model("lenet5", in_channels=1, seed=1)
    PruneResult.load(tmp_path / "sw.pt").apply_to(fresh)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(fresh(x), out)


def caffe_free(model_name: str, sparsity: float):
    model = create_model(model_name, in_channels=1, seed=0)
    return model, prune(model, "smallworld", sparsity, rewire_p=0.5, topology=False)


def test_cross_layer_needs_a_linear_stack():
    with pytest.raises(TopopruneError, match="cross_layer needs at least two chained Linear"):
        prune(create_model("resnet20"), "smallworld", 0.5, cross_layer=True, topology=False)


def test_position_flatten_reaches_2_3_percent_of_the_classic_lenet5():
    model = create_model("lenet5", in_channels=1)
    result = prune(model, "smallworld", 0.977, flatten="position", input_size=MNIST)
    assert abs(result.metrics["params_reduction"] - 0.977) <= 0.003
    assert result.layers[2]["units"] == [400, 120]  # fc1: every flattened input is a node
    assert result.metrics["topology"]["nodes"] == 1 + 6 + 16 + 400 + 120 + 84 + 10


def test_the_er_rule_gives_every_unit_about_the_same_number_of_links():
    model = create_model("lenet5-caffe", in_channels=1)
    result = prune(model, "smallworld", 0.977, flatten="position", density="er", topology=False)
    free = [row for row in result.layers if row["kept"] < 1]  # conv1 (one input) is full
    per_unit = [row["links"] / sum(row["units"]) for row in free]
    assert max(per_unit) - min(per_unit) < 0.01 * max(per_unit)


def test_realize_keeps_the_outputs_of_small_world_masks():
    from topoprune import realize

    model = create_model("lenet5-caffe", in_channels=1, seed=0)
    prune(model, "smallworld", 0.95, topology=False)
    model.eval()
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
        fast = realize(model, x)
        torch.testing.assert_close(fast(x), expected, rtol=1e-4, atol=1e-5)


def test_skip_projections_keep_no_activations_between_passes():
    model = create_model("lenet5", in_channels=1, seed=0)
    prune(model, "smallworld", 0.8, cross_layer=True, rewire_p=0.5, topology=False)
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    assert all(skip._input is None for skip in model.skip_projections)
