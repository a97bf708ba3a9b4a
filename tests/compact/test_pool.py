"""BlockMaxPool2d equals nn.MaxPool2d; realize() considers it for non-overlapping max pools."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from topoprune.compact.autotune import realize
from topoprune.compact.pool import BlockMaxPool2d
from topoprune.measure import count

from .helpers import circulant, masked_conv


@settings(max_examples=60, deadline=None)
@given(
    kernel=st.sampled_from([2, 3, (2, 3), (3, 1)]),
    ceil_mode=st.booleans(),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(3, 11), st.integers(3, 11)),
    seed=st.integers(0, 1000),
)
def test_values_and_shape_equal_max_pool(kernel, ceil_mode, shape, seed):
    pool = nn.MaxPool2d(kernel, ceil_mode=ceil_mode)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(BlockMaxPool2d.from_pool(pool)(x), pool(x))


def test_gradient_reaches_the_maxima():
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    BlockMaxPool2d(2)(x).sum().backward()
    expected = torch.autograd.grad(nn.MaxPool2d(2)(x).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)  # no ties in random data


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(3, stride=2),
        nn.MaxPool2d(2, padding=1),
        nn.MaxPool2d(2, dilation=2),
        nn.MaxPool2d(2, return_indices=True),
        nn.AvgPool2d(2),
        nn.MaxPool2d(1),
    ],
)
def test_overlapping_padded_or_other_pools_are_not_converted(pool):
    assert BlockMaxPool2d.from_pool(pool) is None


def test_counted_like_max_pool():
    conv = nn.Conv2d(3, 4, 3)
    slow = count(nn.Sequential(conv, nn.MaxPool2d(2, ceil_mode=True)), (3, 9, 9))
    fast = count(nn.Sequential(conv, BlockMaxPool2d(2, ceil_mode=True)), (3, 9, 9))
    assert (fast.params, fast.macs, fast.dense_macs) == (slow.params, slow.macs, slow.dense_macs)
    assert fast.macs > count(nn.Sequential(conv), (3, 9, 9)).macs


def vgg_block() -> nn.Sequential:
    conv = masked_conv(circulant(8, 2), 16, 16, seed=1, kernel_size=3, padding=1)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.MaxPool2d(2, ceil_mode=True), conv, nn.MaxPool2d(3, 1)
    ).eval()


def test_realize_times_non_overlapping_pools_and_keeps_the_outputs():
    model, x = vgg_block(), torch.randn(4, 3, 9, 9)
    realized = realize(model, x, repeats=2, warmup=1, trainable=True)
    layers = {layer.name: layer for layer in realized.realize_report.layers}
    assert sorted(layers) == ["1", "2"]  # the stride-1 pool "3" overlaps: left alone
    assert layers["1"].structure == "max pool 2x2"
    assert set(layers["1"].times_ms) == {"dense", "strided"}
    chosen = realized.get_submodule("1")
    assert isinstance(chosen, BlockMaxPool2d if layers["1"].chosen == "strided" else nn.MaxPool2d)
    with torch.no_grad():
        torch.testing.assert_close(realized(x), model(x), rtol=1e-4, atol=1e-5)


def test_pools_stay_when_the_pool_kind_is_left_out():
    model, x = vgg_block(), torch.randn(2, 3, 8, 8)
    realized = realize(
        model, x, repeats=1, warmup=0, candidates=("dense", "grouped"), trainable=True
    )
    assert [layer.name for layer in realized.realize_report.layers] == ["2"]
    assert type(realized.get_submodule("1")) is nn.MaxPool2d
