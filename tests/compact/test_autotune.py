import json

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.compact import kernel, slice_kernel
from topoprune.compact.autotune import realize
from topoprune.compact.compact_conv import CompactConv2d
from topoprune.compact.masked import copy_model, is_masked_conv
from topoprune.compact.sparse_conv import SliceSparseConv2d
from topoprune.errors import TopopruneError

from .helpers import circulant, masked_conv


class TinyResidual(nn.Module):
    """Dense stem, a residual block of two masked convs, a strided masked stage with a masked
    1x1 projection shortcut, an element-wise masked conv, and a linear head; BN everywhere."""

    def __init__(self) -> None:
        super().__init__()
        ring = circulant(8, 2)
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.conv1 = masked_conv(ring, 16, 16, seed=1, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = masked_conv(ring, 16, 16, seed=2, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.down = masked_conv(ring, 16, 24, seed=3, kernel_size=3, stride=2, padding=1)
        self.shortcut = masked_conv(ring, 16, 24, seed=4, kernel_size=1, stride=2)
        self.bn3 = nn.BatchNorm2d(24)
        self.noise = nn.Conv2d(24, 24, 3, padding=1)
        generator = torch.Generator().manual_seed(5)
        prune.custom_from_mask(
            self.noise, "weight", (torch.rand(24, 24, 3, 3, generator=generator) < 0.2).float()
        )
        self.head = nn.Linear(24, 10)
        for bn in (self.stem_bn, self.bn1, self.bn2, self.bn3):  # statistics as after training
            bn.running_mean.uniform_(-0.1, 0.1, generator=generator)
            bn.running_var.uniform_(0.05, 0.2, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bn(self.stem(x)))
        y = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(x + self.bn2(self.conv2(y)))
        x = torch.relu(self.bn3(self.down(x)) + self.shortcut(x))
        x = torch.relu(self.noise(x))
        return self.head(x.mean(dim=(2, 3)))


MASKED = ["conv1", "conv2", "down", "shortcut", "noise"]


@pytest.fixture(scope="module")
def model_and_input():
    torch.manual_seed(0)
    return TinyResidual().eval(), torch.randn(4, 3, 12, 12)


@pytest.fixture(scope="module")
def realized(model_and_input):
    model, x = model_and_input
    return realize(model, x, repeats=2, warmup=1, trainable=True)


def test_realized_model_computes_the_masked_outputs(model_and_input, realized):
    model, x = model_and_input
    with torch.no_grad():
        expected = model(x)
        assert expected.std(dim=0).min() > 1e-3  # outputs depend on the input: a real check
        torch.testing.assert_close(realized(x), expected, rtol=1e-4, atol=1e-5)


def test_every_masked_conv_is_reported_and_replaced(realized):
    report = realized.realize_report
    assert [layer.name for layer in report.layers] == MASKED
    for layer in report.layers:
        module = realized.get_submodule(layer.name)
        assert not is_masked_conv(module)
        assert layer.chosen in layer.times_ms and layer.rejected == []
        assert min(layer.times_ms.values()) == layer.times_ms[layer.chosen] > 0
        if layer.chosen == "dense":
            assert type(module) is nn.Conv2d
        elif layer.chosen == "slices":
            assert isinstance(module, SliceSparseConv2d)
        else:
            assert isinstance(module, CompactConv2d)
            assert module.impl == ("grouped" if layer.chosen == "grouped" else "direct")
    assert len(report.table().splitlines()) == 2 + len(MASKED)


def test_candidates_offered_per_layer(realized):
    layers = {layer.name: layer for layer in realized.realize_report.layers}
    direct_tiles = {f"direct{ot}x{nv}" for ot, nv in kernel.TILES if ot <= 2}
    # conv1: 8 groups x (out 2, in 4), stride 1 -> every 1- and 2-row tile
    expected = {"dense", "grouped"} | (direct_tiles if kernel.kernel_available() else set())
    expected |= {"slices"} if slice_kernel.slice_kernel_available() else set()
    assert set(layers["conv1"].times_ms) == expected
    assert layers["conv1"].structure == "8 x (out 2, in 4)"
    # stride 2: no native kernel
    assert set(layers["down"].times_ms) == {"dense", "grouped"}
    assert set(layers["shortcut"].times_ms) == {"dense", "grouped"}
    # element-wise mask: no structure, stays dense
    assert layers["noise"].structure == "none"
    assert set(layers["noise"].times_ms) == {"dense"} and layers["noise"].chosen == "dense"


def test_realize_does_not_modify_its_input(model_and_input):
    model, x = model_and_input
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    types = [type(module) for module in model.modules()]
    model.train()  # realize must also leave training flags (and BN statistics) alone
    realize(model, x, repeats=1, warmup=0, candidates=("grouped",))
    model.eval()
    after = model.state_dict()
    assert sorted(after) == sorted(before)
    assert all(torch.equal(after[name], before[name]) for name in before)
    assert [type(module) for module in model.modules()] == types
    assert all(is_masked_conv(model.get_submodule(name)) for name in MASKED)


def test_restricted_candidates(model_and_input):
    model, x = model_and_input
    dense_only = realize(model, x, repeats=1, warmup=0, candidates=("dense",))
    assert {layer.chosen for layer in dense_only.realize_report.layers} == {"dense"}
    grouped = realize(model, x, repeats=1, warmup=0, candidates=("grouped",))
    for layer in grouped.realize_report.layers:
        assert not any(name.startswith("direct") for name in layer.times_ms)


def test_unknown_candidate_is_a_user_error(model_and_input):
    model, x = model_and_input
    with pytest.raises(TopopruneError, match="unknown realize candidates"):
        realize(model, x, candidates=("sparse",))


def test_without_native_kernel_realize_uses_torch_forms(model_and_input, monkeypatch):
    model, x = model_and_input
    monkeypatch.setattr(kernel, "load_kernel", lambda: None)
    monkeypatch.setattr(slice_kernel, "load_slice_kernel", lambda: None)
    fallback = realize(model, x, repeats=1, warmup=0)
    assert fallback.realize_report.kernel_available is False
    for layer in fallback.realize_report.layers:
        assert set(layer.times_ms) <= {"dense", "grouped"}
    with torch.no_grad():
        torch.testing.assert_close(fallback(x), model(x), rtol=1e-4, atol=1e-5)


def test_realized_model_backpropagates_like_the_masked_one(model_and_input, realized):
    model, x = model_and_input
    masked, fast = copy_model(model).train(), copy_model(realized).train()
    target = torch.randn(4, 10)
    for network in (masked, fast):
        nn.functional.mse_loss(network(x), target).backward()
    for name in MASKED:
        layer, reference = fast.get_submodule(name), masked.get_submodule(name)
        expected = reference.weight_orig.grad
        if isinstance(layer, CompactConv2d):
            real, rows, cols = layer.slot_indices()
            torch.testing.assert_close(layer.weight.grad[real], expected[rows, cols])
        elif isinstance(layer, SliceSparseConv2d):
            torch.testing.assert_close(layer.weight.grad, expected[layer.rows(), layer.col])
        else:  # a folded plain conv: equal where the mask keeps weights
            kept = reference.weight_mask.bool()
            torch.testing.assert_close(layer.weight.grad[kept], expected[kept])


class UsesOneOfTwo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = masked_conv(circulant(8, 2), 8, 8, kernel_size=1)
        self.unused = masked_conv(circulant(8, 2), 8, 8, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


def test_convs_the_input_never_reaches_are_left_alone():
    realized = realize(UsesOneOfTwo(), torch.randn(1, 8, 4, 4), repeats=1, trainable=True)
    assert [layer.name for layer in realized.realize_report.layers] == ["used"]
    assert is_masked_conv(realized.unused) and not is_masked_conv(realized.used)


def test_a_choice_cache_times_each_layer_and_batch_size_once(model_and_input, tmp_path):
    model, x = model_and_input
    path = tmp_path / "choices.json"
    first = realize(model, x, repeats=1, warmup=0, cache=path)
    cached = {layer.name: layer.cached for layer in first.realize_report.layers}
    # conv2 is conv1's twin (same kind, shapes, group structure and input): timed once
    assert cached == {
        "conv1": False,
        "conv2": True,
        "down": False,
        "shortcut": False,
        "noise": False,
    }
    entries = len(json.loads(path.read_text()))
    assert entries == len(MASKED) - 1
    again = realize(model, x, repeats=1, warmup=0, cache=path)
    assert all(layer.cached for layer in again.realize_report.layers)
    chosen = [(layer.chosen, layer.times_ms) for layer in first.realize_report.layers]
    assert [(layer.chosen, layer.times_ms) for layer in again.realize_report.layers] == chosen
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), rtol=1e-4, atol=1e-5)
    single = realize(model, x[:1], repeats=1, warmup=0, cache=path)  # batch 1: chosen apart
    assert not single.realize_report.layers[0].cached
    assert len(json.loads(path.read_text())) == 2 * entries


class IrregularNet(nn.Module):
    """A conv with random whole-slice masks and a masked Linear, as small-world and EXP make."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(24, 24, 3, padding=1)
        keep = torch.rand(24, 24, generator=generator) < 0.2
        mask = keep[:, :, None, None].expand_as(self.conv.weight).float().contiguous()
        prune.custom_from_mask(self.conv, "weight", mask)
        self.fc = nn.Linear(24 * 6 * 6, 10)
        keep = (torch.rand(10, 24 * 6 * 6, generator=generator) < 0.05).float()
        prune.custom_from_mask(self.fc, "weight", keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_irregular_slices_and_masked_linears_get_their_sparse_kernels():
    model, x = IrregularNet().eval(), torch.randn(8, 24, 6, 6)
    realized = realize(model, x, repeats=1, warmup=0)
    layers = {layer.name: layer for layer in realized.realize_report.layers}
    if slice_kernel.slice_kernel_available():
        assert "slices" in layers["conv"].times_ms
        assert set(layers["fc"].times_ms) == {"dense", "sparse"}
    assert layers["fc"].structure == f"linear, {int(model.fc.weight_mask.sum())}/8640 kept"
    with torch.no_grad():
        torch.testing.assert_close(realized(x), model(x), rtol=1e-4, atol=1e-5)
