"""count(): agreement with thop, mask-awareness, shared parameters, side effects, errors."""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from topoprune.errors import TopopruneError
from topoprune.measure import count

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # thop 0.1.1 uses distutils' LooseVersion
    import thop


def thop_layer_ops(model: nn.Module, input_size: tuple[int, ...]) -> dict[str, int]:
    """thop's per-leaf-module op counts, keyed by dotted module name."""
    _, _, tree = thop.profile(
        model, inputs=(torch.zeros(1, *input_size),), verbose=False, ret_layer_info=True
    )
    flat: dict[str, int] = {}

    def walk(node: dict, prefix: str) -> None:
        for name, (ops, _, children) in node.items():
            if children:
                walk(children, f"{prefix}{name}.")
            else:
                flat[f"{prefix}{name}"] = int(ops)

    walk(tree, "")
    return flat


def small_cnn() -> nn.Sequential:
    """(3, 16, 16) → 10 logits; the shapes after each stage are written beside it."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 8×16×16
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8×8×8
        nn.Conv2d(8, 16, 3, padding=1, bias=False),  # 16×8×8
        nn.BatchNorm2d(16, affine=False),
        nn.ReLU(),
        nn.AvgPool2d(2),  # 16×4×4
        nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=4),  # 16×2×2
        nn.AdaptiveAvgPool2d(1),  # 16×1×1, window of 4
        nn.Flatten(),
        nn.Linear(16, 10),
    )


def mobile_block() -> nn.Sequential:
    """A MobileNet-style grouped model: depthwise then pointwise, (4, 10, 10) in."""
    return nn.Sequential(
        nn.Conv2d(4, 12, 1, bias=False),
        nn.BatchNorm2d(12),
        nn.ReLU6(),
        nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=12, bias=False),  # 12×5×5
        nn.BatchNorm2d(12),
        nn.ReLU6(),
        nn.Conv2d(12, 6, 1, groups=3),
        nn.AdaptiveAvgPool2d(1),  # window of 25
        nn.Flatten(),
        nn.Linear(6, 3),
    )


def in_thop_convention(module: nn.Module, dense_macs: int, pool_window: int) -> int:
    """Our dense MACs for ``module`` converted to thop 0.1.1's convention, difference by difference.

    Conv and Linear agree (neither counts bias). thop counts BatchNorm as 2 ops per element, 4 when
    affine (ours: 1); max pooling as 0 (ours: one op per window element); average pooling as 1 per
    output (ours: kernel area per output); adaptive average pooling as window + 1 per output.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return dense_macs
    if isinstance(module, nn.BatchNorm2d):
        return (4 if module.affine else 2) * dense_macs
    if isinstance(module, nn.MaxPool2d):
        return 0
    if isinstance(module, nn.AvgPool2d):
        return dense_macs // module.kernel_size**2
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return dense_macs + dense_macs // pool_window
    raise AssertionError(f"no conversion for {type(module).__name__}")


@pytest.mark.parametrize(
    ("make_model", "input_size", "pool_window"),
    [(small_cnn, (3, 16, 16), 4), (mobile_block, (4, 10, 10), 25)],
)
def test_dense_models_agree_with_thop(make_model, input_size, pool_window):
    model = make_model()
    counts = count(model, input_size)
    thop_ops = thop_layer_ops(model, input_size)
    _, thop_params = thop.profile(model, inputs=(torch.zeros(1, *input_size),), verbose=False)
    modules = dict(model.named_modules())

    ours = {
        layer.name: in_thop_convention(modules[layer.name], layer.dense_macs, pool_window)
        for layer in counts.layers
    }
    assert ours == {name: ops for name, ops in thop_ops.items() if name in ours}
    assert all(thop_ops[name] == 0 for name in thop_ops.keys() - ours.keys())
    assert counts.params == counts.dense_params == int(thop_params)
    assert counts.macs == counts.dense_macs


def test_small_cnn_totals_by_hand():
    counts = count(small_cnn(), (3, 16, 16))
    conv_macs = 256 * 8 * 27 + 64 * 16 * 72 + 4 * 16 * 4 * 9
    # bn1 (8·16·16), max pool (512 out × 4), bn2 (16·8·8), avg pool (256 out × 4),
    # adaptive pool (16 out × 4), linear (16 × 10)
    other_macs = 2048 + 512 * 4 + 1024 + 256 * 4 + 16 * 4 + 160
    assert counts.macs == conv_macs + other_macs
    assert counts.params == (8 * 27 + 8) + 16 + 16 * 72 + (16 * 4 * 9 + 16) + 170


conv_configs = st.fixed_dictionaries(
    {
        "groups": st.integers(1, 3),
        "in_per_group": st.integers(1, 3),
        "out_per_group": st.integers(1, 3),
        "kernel": st.integers(1, 3),
        "stride": st.integers(1, 2),
        "padding": st.integers(0, 2),
        "dilation": st.integers(1, 2),
        "bias": st.booleans(),
        "size": st.integers(5, 9),
    }
)


def make_conv(config: dict) -> nn.Conv2d:
    return nn.Conv2d(
        config["groups"] * config["in_per_group"],
        config["groups"] * config["out_per_group"],
        config["kernel"],
        stride=config["stride"],
        padding=config["padding"],
        dilation=config["dilation"],
        groups=config["groups"],
        bias=config["bias"],
    )


@settings(max_examples=30, deadline=None)
@given(config=conv_configs)
def test_any_conv_agrees_with_thop(config):
    conv = make_conv(config)
    input_size = (conv.in_channels, config["size"], config["size"])
    counts = count(conv, input_size)
    # thop counts the parameters of child modules only, hence the Sequential around the conv.
    thop_macs, thop_params = thop.profile(
        nn.Sequential(conv), inputs=(torch.zeros(1, *input_size),), verbose=False
    )
    assert (counts.macs, counts.params) == (int(thop_macs), int(thop_params))


@settings(max_examples=30, deadline=None)
@given(config=conv_configs, mask_seed=st.integers(0, 2**16), keep=st.floats(0.0, 1.0))
def test_fine_grained_conv_mask_counts_kept_weights(config, mask_seed, keep):
    conv = make_conv(config)
    generator = torch.Generator().manual_seed(mask_seed)
    mask = (torch.rand(conv.weight.shape, generator=generator) < keep).float()
    prune.custom_from_mask(conv, "weight", mask)
    input_size = (conv.in_channels, config["size"], config["size"])
    out_h, out_w = conv(torch.zeros(1, *input_size)).shape[-2:]
    bias = conv.out_channels if config["bias"] else 0

    counts = count(conv, input_size)
    kept = int(mask.sum())
    assert counts.params == kept + bias
    assert counts.macs == out_h * out_w * kept
    assert counts.dense_params == conv.weight.numel() + bias
    assert counts.dense_macs == out_h * out_w * conv.weight.numel()
    assert counts.layers[0].masked


def block_mask(adjacency: list[list[int]], out_nodes: list[int], in_nodes: list[int], kernel: int):
    """mask[o, i, :, :] = A[node(o), node(i)] (the relational-graph mapping)."""
    a = torch.tensor(adjacency, dtype=torch.float32)
    slices = a[torch.tensor(out_nodes)][:, torch.tensor(in_nodes)]
    return slices[:, :, None, None].expand(-1, -1, kernel, kernel).clone()


def test_block_mask_counts_kept_slices():
    # 6 out channels in 2 blocks of 3, 4 in channels in 2 blocks of 2, A = identity:
    # kept slices = 3·2 + 3·2 = 12 of 24, 9 weights each; 8×8 output positions.
    conv = nn.Conv2d(4, 6, 3, padding=1)
    mask = block_mask([[1, 0], [0, 1]], [0, 0, 0, 1, 1, 1], [0, 0, 1, 1], 3)
    prune.custom_from_mask(conv, "weight", mask)
    counts = count(conv, (4, 8, 8))
    assert (counts.params, counts.dense_params) == (12 * 9 + 6, 24 * 9 + 6)
    assert (counts.macs, counts.dense_macs) == (64 * 12 * 9, 64 * 24 * 9)
    assert counts.reduction() == {"params": 1 - 114 / 222, "macs": 0.5}


def test_block_mask_in_a_network_masks_only_the_pruned_layer():
    # A = ring on 4 nodes without self-loops (k = 2): half of the 16×16 slices kept.
    ring = [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]
    nodes = [c // 4 for c in range(16)]
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.Conv2d(16, 16, 3, padding=1, bias=False),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 2),
    )
    prune.custom_from_mask(model[1], "weight", block_mask(ring, nodes, nodes, 3))
    counts = count(model, (3, 4, 4))
    rows = {layer.name: layer for layer in counts.layers}
    assert (rows["1"].params, rows["1"].macs) == (128 * 9, 16 * 128 * 9)
    assert [layer.masked for layer in counts.layers] == [False, True, False]
    assert counts.params == 432 + 128 * 9 + 514
    assert counts.dense_params == 432 + 256 * 9 + 514


def test_fine_grained_conv_mask_by_hand():
    # 2→3 channels, 3×3 kernel on 6×6: 4×4 outputs. Keep every centre tap (6) plus all of
    # slice (0, 0) (8 more): 14 weights.
    conv = nn.Conv2d(2, 3, 3, bias=False)
    mask = torch.zeros(3, 2, 3, 3)
    mask[:, :, 1, 1] = 1
    mask[0, 0] = 1
    prune.custom_from_mask(conv, "weight", mask)
    counts = count(conv, (2, 6, 6))
    assert (counts.params, counts.macs) == (14, 16 * 14)


def test_masked_linear_counts_kept_weights_per_row():
    linear = nn.Linear(5, 3)
    mask = torch.tensor([[1, 1, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 1]])
    prune.custom_from_mask(linear, "weight", mask)
    counts = count(linear, (4, 5))  # 4 rows
    assert (counts.params, counts.macs) == (6 + 3, 4 * 6)
    assert (counts.dense_params, counts.dense_macs) == (15 + 3, 4 * 15)


def test_bias_mask_lowers_params_not_macs():
    linear = nn.Linear(4, 4)
    prune.custom_from_mask(linear, "bias", torch.tensor([1, 0, 0, 1]))
    counts = count(linear, (4,))
    assert (counts.params, counts.macs) == (16 + 2, 16)


def test_repeated_pruning_counts_the_combined_mask():
    conv = nn.Conv2d(4, 4, 3, bias=False)
    prune.random_unstructured(conv, "weight", amount=0.5)
    prune.l1_unstructured(conv, "weight", amount=0.5)
    counts = count(conv, (4, 5, 5))
    kept = int(conv.weight_mask.sum())
    assert kept == 36  # 50% of 144, then 50% of the remaining 72 (amounts apply to what is left)
    assert (counts.params, counts.macs) == (kept, 9 * kept)


def test_after_prune_remove_counts_are_dense():
    # The mask is gone, so the layer counts as dense although its zeros remain in the weights.
    conv = nn.Conv2d(4, 6, 3, padding=1)
    prune.custom_from_mask(
        conv, "weight", block_mask([[1, 0], [0, 1]], [0] * 3 + [1] * 3, [0, 0, 1, 1], 3)
    )
    prune.remove(conv, "weight")
    assert int(torch.count_nonzero(conv.weight)) <= 108
    counts = count(conv, (4, 8, 8))
    unpruned = count(nn.Conv2d(4, 6, 3, padding=1), (4, 8, 8))
    assert (counts.params, counts.macs) == (unpruned.params, unpruned.macs) == (222, 64 * 216)
    assert not counts.layers[0].masked


def test_tied_weights_are_counted_once():
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    second.weight = first.weight
    counts = count(nn.Sequential(first, second), (4,))
    assert counts.params == 16 + 4 + 4
    assert counts.macs == 16 + 16
    assert [layer.params for layer in counts.layers] == [20, 4]


class CalledTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)
        self.also_linear = self.linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.also_linear(self.linear(x))


def test_module_called_twice_counts_params_once_and_macs_twice():
    counts = count(CalledTwice(), (6,))
    assert (counts.params, counts.macs) == (42, 72)
    assert [layer.name for layer in counts.layers] == ["linear"]


class Scaled(nn.Module):
    """A module with its own raw parameter used functionally, and a LayerNorm child."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.norm = nn.LayerNorm(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x * self.scale)


def test_parameters_without_mac_rule_are_counted_and_listed():
    counts = count(nn.Sequential(nn.Linear(3, 3), Scaled()), (3,))
    assert counts.params == 12 + 3 + 6
    assert counts.macs == 9
    assert counts.uncounted == ["1", "1.norm"]
    assert sum(layer.params for layer in counts.layers) == counts.params


def test_layers_sum_to_totals():
    model = small_cnn()
    prune.l1_unstructured(model[4], "weight", amount=0.7)
    counts = count(model, (3, 16, 16))
    for field in ("params", "macs", "dense_params", "dense_macs"):
        assert sum(getattr(layer, field) for layer in counts.layers) == getattr(counts, field)


def test_count_leaves_model_modes_stats_and_hooks_as_they_were():
    model = small_cnn().train()
    model[5].eval()
    modes = [module.training for module in model.modules()]
    stats = model[1].running_mean.clone()
    count(model, (3, 16, 16))
    assert [module.training for module in model.modules()] == modes
    assert torch.equal(model[1].running_mean, stats)
    assert all(not module._forward_hooks for module in model.modules())


def test_wrong_input_size_raises_and_cleans_up():
    model = small_cnn().train()
    with pytest.raises(TopopruneError, match="check input_size"):
        count(model, (4, 16, 16))
    assert model.training and model[1].training
    assert all(not module._forward_hooks for module in model.modules())


@pytest.mark.parametrize("input_size", [(), (3, 0, 4), (3.0, 32, 32), "abc", 5, (True, 3)])
def test_invalid_input_size_raises(input_size):
    with pytest.raises(TopopruneError, match="input_size must be"):
        count(nn.Linear(3, 3), input_size)


def test_model_on_another_device_raises():
    with pytest.raises(TopopruneError, match="model is on cpu"):
        count(nn.Linear(3, 3), (3,), device="meta")


def test_unknown_device_raises():
    with pytest.raises(TopopruneError, match="unknown device"):
        count(nn.Linear(3, 3), (3,), device="gpu")


def test_cuda_without_cuda_raises(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TopopruneError, match="CUDA is not available"):
        count(nn.Linear(3, 3), (3,), device="cuda")


def test_input_follows_model_dtype():
    counts = count(nn.Linear(3, 2).double(), (3,))
    assert counts.macs == 6
