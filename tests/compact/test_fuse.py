"""Inference fusion: BatchNorm folded, residual add and ReLU in the conv epilogue, exact outputs."""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from topoprune import count
from topoprune.compact import CompactConv2d, kernel, realize
from topoprune.compact.epilogue import RELU, RELU6
from topoprune.compact.fuse import FusedConv2d, InferenceModel, fuse_for_inference
from topoprune.errors import TopopruneError
from topoprune.models import create_model, default_widths, list_models
from topoprune.pruning import prune as prune_model

from .helpers import circulant, masked_conv

IMAGE = {"lenet5-caffe": 28}


def calibrate_batch_norms(model: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
    """Running statistics from batch ``x`` and random affine parameters near (1, 0), so folding
    them is really tested and activations keep their scale through the depth."""
    generator = torch.Generator().manual_seed(seed)
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: one batch sets the statistics
            norm.weight.copy_(torch.rand(norm.num_features, generator=generator) + 0.5)
            norm.bias.copy_(torch.rand(norm.num_features, generator=generator) * 0.4 - 0.2)
        model.train()(x)
    return model.eval()


def mask_kernel_slices(model: nn.Module, density: float, seed: int = 0) -> nn.Module:
    """Every ungrouped conv but the first keeps a random ``density`` of its (out, in) slices."""
    generator = torch.Generator().manual_seed(seed)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    for conv in convs[1:]:
        keep = torch.rand(conv.out_channels, conv.in_channels, generator=generator) < density
        mask = keep[:, :, None, None].expand_as(conv.weight).float().contiguous()
        prune.custom_from_mask(conv, "weight", mask)
    return model


def assert_same_outputs(got: torch.Tensor, expected: torch.Tensor, tolerance: float) -> None:
    """``got`` equals ``expected`` up to ``tolerance`` times the output's scale."""
    scale = float(expected.abs().max())
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) <= tolerance * max(scale, 1.0)


def zoo_model(name: str) -> tuple[nn.Module, torch.Tensor]:
    """A narrow zoo model (an eighth of the default widths, at least 4) with half of its kernel
    slices masked and calibrated BatchNorms, in eval mode; and a batch of 4 images for it."""
    widths = [max(4, width // 8) for width in default_widths(name)]
    model = create_model(name, num_classes=10, widths=widths, seed=0)
    side = IMAGE.get(name, 32)
    x = torch.randn(4, 3, side, side, generator=torch.Generator().manual_seed(1))
    return calibrate_batch_norms(mask_kernel_slices(model, 0.5), x), x


@pytest.mark.parametrize("name", list_models())
def test_fused_zoo_model_computes_the_masked_outputs(name):
    model, x = zoo_model(name)
    fused = fuse_for_inference(model)
    modules = list(fused.modules())
    assert not any(isinstance(module, nn.BatchNorm2d) for module in modules)
    assert any(isinstance(module, FusedConv2d) for module in modules)
    with torch.no_grad():
        expected = model(x)
        assert expected.std(dim=0).max() > 1e-4  # outputs depend on the input: a real check
        # float32: folding changes every layer's rounding, and 50 layers add it up
        assert_same_outputs(fused(x), expected, 1e-3)
        # float64: the rewrite itself is exact algebra
        exact = fuse_for_inference(model.double())
        assert_same_outputs(exact(x.double()), model(x.double()), 1e-10)


@pytest.mark.parametrize("name", ["vgg11", "resnet20", "cresnet18", "mobilenetv2"])
def test_realize_fuses_by_default_and_keeps_the_outputs(name):
    model, x = zoo_model(name)
    realized = realize(model, x, repeats=1, warmup=0)
    assert isinstance(realized, InferenceModel)
    assert not any(isinstance(module, nn.BatchNorm2d) for module in realized.modules())
    chosen = {layer.chosen for layer in realized.realize_report.layers}
    assert chosen  # every masked conv was timed and replaced
    with torch.no_grad():
        assert_same_outputs(realized(x), model(x), 1e-4)


def test_resnet_blocks_take_the_residual_add_and_relu_into_the_conv():
    model, x = zoo_model("resnet20")
    fused = fuse_for_inference(model)
    block = fused.network.get_submodule("layer1.0")
    assert block.conv1.clamp == RELU and block.conv2.clamp == RELU
    calls = [node for node in fused.network.graph.nodes if node.target == "layer1.0.conv2"]
    assert len(calls) == 1 and calls[0].args[1] is not None  # called as conv(x, residual)
    names = {str(node.target) for node in fused.network.graph.nodes}
    assert not any("bn" in name or "relu" in name for name in names)


def test_a_fused_model_refuses_to_train_but_evaluates():
    model, x = zoo_model("resnet20")
    fused = fuse_for_inference(model)
    with pytest.raises(TopopruneError, match="cannot train.*trainable=True"):
        fused.train()
    assert fused.eval() is fused and not fused.training


def test_trainable_realize_keeps_class_batch_norms_and_mode():
    model, x = zoo_model("resnet20")
    realized = realize(model, x, repeats=1, warmup=0, trainable=True)
    assert type(realized) is type(model)
    assert any(isinstance(module, nn.BatchNorm2d) for module in realized.modules())
    realized.train()  # allowed


def test_the_input_model_is_not_modified():
    model, _ = zoo_model("resnet20")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    fuse_for_inference(model)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)


@pytest.mark.skipif(not kernel.kernel_available(), reason="no C++ compiler: no native kernel")
@pytest.mark.parametrize("clamp", [(-math.inf, math.inf), RELU, RELU6])
@pytest.mark.parametrize("with_residual", [False, True])
def test_native_epilogue_equals_torch_ops(clamp, with_residual):
    conv = masked_conv(circulant(8, 2), 16, 16, kernel_size=3, padding=1)
    direct = CompactConv2d.from_masked(conv, impl="direct")
    grouped = CompactConv2d.from_masked(conv, impl="grouped")
    x = torch.randn(3, 16, 7, 7) * 4
    residual = torch.randn(3, 16, 7, 7) * 4 if with_residual else None
    with torch.inference_mode():
        assert direct.direct_supported(x)
        got = direct.fused_forward(x, residual, clamp)
        expected = conv(x) + (0 if residual is None else residual)
        expected = expected.clamp(None if math.isinf(clamp[0]) else clamp[0], clamp[1])
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(grouped.fused_forward(x, residual, clamp), got)


def test_batch_norm_folds_into_a_compact_conv():
    conv = masked_conv(circulant(8, 2), 16, 16, kernel_size=3, padding=1, bias=False)
    model = nn.Sequential(CompactConv2d.from_masked(conv), nn.BatchNorm2d(16))
    x = torch.randn(2, 16, 5, 5)
    fused = fuse_for_inference(calibrate_batch_norms(model, x))
    assert [type(module) for module in fused.network.children()] == [CompactConv2d]
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)


def test_an_untraceable_model_is_a_user_error():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(TopopruneError, match="torch.fx could not trace.*trainable=True"):
        fuse_for_inference(DataDependent())


def test_rgp_masked_model_realizes_fused_and_exact():
    model = create_model("resnet20", num_classes=10, seed=0)
    prune_model(model, "rgp", 0.75, nodes=8, steps=10, seed=0)
    x = torch.randn(2, 3, 16, 16)
    calibrate_batch_norms(model, x)
    realized = realize(model, x, repeats=1, warmup=0)
    assert any(layer.chosen != "dense" for layer in realized.realize_report.layers)
    with torch.no_grad():
        assert_same_outputs(realized(x), model(x), 1e-4)


def test_counts_of_a_fused_model_are_the_dense_ones_without_batch_norms():
    model = create_model("resnet20", num_classes=10, seed=0).eval()
    counts, fused_counts = count(model, (3, 16, 16)), count(fuse_for_inference(model), (3, 16, 16))
    norms = [layer for layer in counts.layers if layer.type == "BatchNorm2d"]
    assert fused_counts.macs == counts.macs - sum(layer.macs for layer in norms)
    assert fused_counts.params == counts.params - sum(layer.params for layer in norms) + sum(
        module.out_channels  # each folded conv gains a bias
        for module in model.modules()
        if isinstance(module, nn.Conv2d)
    )


def test_a_conv_called_twice_is_neither_folded_nor_fused():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.norm = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, x):
            return torch.relu(self.norm(self.conv(x))) + self.conv(x)

    model = Shared()
    x = torch.randn(2, 4, 5, 5)
    fused = fuse_for_inference(calibrate_batch_norms(model, x))
    assert type(fused.network.conv) is nn.Conv2d and hasattr(fused.network, "norm")
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x))
