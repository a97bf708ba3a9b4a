import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from topoprune.compact.compact_conv import CompactConv2d
from topoprune.compact.kernel import kernel_available
from topoprune.compact.structure import find_block_structure
from topoprune.errors import TopopruneError
from topoprune.measure import count

from .helpers import circulant, masked_conv, random_rows

CLOSE = {"rtol": 1e-4, "atol": 1e-5}


@st.composite
def conv_cases(draw):
    """A random block-masked conv (any n, k, channel counts, geometry) and a fitting input."""
    n = draw(st.integers(3, 8))
    k = draw(st.integers(1, max(1, n // 3)))
    adj = random_rows(n, k, draw(st.integers(0, 10_000)))
    kernel = draw(st.sampled_from([(1, 1), (3, 3), (1, 3), (2, 3)]))
    options = {
        "kernel_size": kernel,
        "stride": draw(st.sampled_from([1, 2, (1, 2)])),
        "padding": draw(st.sampled_from([0, 1, 2, (0, 1)])),
        "dilation": draw(st.sampled_from([1, 2])),
        "bias": draw(st.booleans()),
    }
    in_channels = draw(st.integers(n, 2 * n + 3))
    out_channels = draw(st.integers(n, 2 * n + 3))
    conv = masked_conv(adj, in_channels, out_channels, seed=draw(st.integers(0, 99)), **options)
    # a few random row patterns store no fewer weights grouped than dense (e.g. 8 -> 6
    # channels with every output reading most inputs): those have no block structure and
    # from_masked refuses them (tested on its own below), so they are not cases here
    assume(find_block_structure(conv.weight_mask) is not None)
    dilation = options["dilation"]
    height = draw(st.integers(dilation * (kernel[0] - 1) + 1, 9))
    width = draw(st.integers(dilation * (kernel[1] - 1) + 1, 9))
    x = torch.randn(draw(st.integers(1, 3)), in_channels, height, width)
    return conv, x


@settings(max_examples=60, deadline=None)
@given(case=conv_cases(), impl=st.sampled_from(["grouped", "direct"]))
def test_forward_equals_masked_conv(case, impl):
    conv, x = case
    compact = CompactConv2d.from_masked(conv, impl=impl)
    with torch.no_grad():
        torch.testing.assert_close(compact(x), conv(x), **CLOSE)


@settings(max_examples=30, deadline=None)
@given(case=conv_cases())
def test_gradients_equal_masked_conv_at_real_weights(case):
    conv, x = case
    compact = CompactConv2d.from_masked(conv)
    x_masked, x_compact = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn_like(conv(x))
    (conv(x_masked) * upstream).sum().backward()
    (compact(x_compact) * upstream).sum().backward()

    real, rows, cols = compact.slot_indices()
    torch.testing.assert_close(
        compact.weight.grad[real], conv.weight_orig.grad[rows, cols], **CLOSE
    )
    assert torch.count_nonzero(compact.weight.grad[~real]) == 0
    torch.testing.assert_close(x_compact.grad, x_masked.grad, **CLOSE)
    if conv.bias is not None:
        torch.testing.assert_close(compact.bias.grad, conv.bias.grad, **CLOSE)


def test_training_steps_match_masked_conv_and_padding_stays_zero():
    conv = masked_conv(circulant(8, 2), 17, 15, kernel_size=3, padding=1)  # uneven blocks
    compact = CompactConv2d.from_masked(conv, impl="direct")
    assert compact.slot_mask is not None
    optimizers = [
        torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        for layer in (conv, compact)
    ]
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(4, 17, 6, 6, generator=generator)
        for layer, optimizer in zip((conv, compact), optimizers, strict=True):
            optimizer.zero_grad()
            layer(x).square().mean().backward()
            optimizer.step()
    real, _, _ = compact.slot_indices()
    assert torch.count_nonzero(compact.weight.detach()[~real]) == 0
    torch.testing.assert_close(compact.dense_weight(), conv.weight_orig * conv.weight_mask, **CLOSE)
    torch.testing.assert_close(compact.bias, conv.bias, **CLOSE)


def test_to_masked_round_trip_restores_weights_mask_and_outputs():
    conv = masked_conv(circulant(8, 4), 19, 13, kernel_size=3, padding=1, stride=2, bias=True)
    compact = CompactConv2d.from_masked(conv)
    exported = compact.to_masked()
    state, original = exported.state_dict(), conv.state_dict()
    assert sorted(state) == sorted(original) == ["bias", "weight_mask", "weight_orig"]
    assert torch.equal(state["weight_mask"], original["weight_mask"])
    torch.testing.assert_close(
        state["weight_orig"] * state["weight_mask"],
        original["weight_orig"] * original["weight_mask"],
    )
    x = torch.randn(2, 19, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), conv(x), **CLOSE)


def test_dense_weight_is_differentiable():
    conv = masked_conv(circulant(8, 2), 16, 16, kernel_size=3)
    compact = CompactConv2d.from_masked(conv)
    compact.dense_weight().sum().backward()
    real, _, _ = compact.slot_indices()
    assert torch.equal(compact.weight.grad, real[..., None, None].float().expand_as(compact.weight))


def test_direct_impl_trains_through_the_grouped_path():
    conv = masked_conv(circulant(8, 2), 16, 16, kernel_size=3, padding=1)
    compact = CompactConv2d.from_masked(conv, impl="direct")
    x = torch.randn(2, 16, 5, 5, requires_grad=True)
    assert not compact.direct_supported(x)
    compact(x).sum().backward()
    assert compact.weight.grad is not None and x.grad is not None
    with torch.no_grad():
        assert compact.direct_supported(x) == kernel_available()


def test_same_padding_string_is_supported():
    conv = masked_conv(circulant(8, 2), 16, 16, kernel_size=3, padding="same")
    compact = CompactConv2d.from_masked(conv, impl="direct")
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(compact(x), conv(x), **CLOSE)


def test_unmasked_conv_is_refused():
    with pytest.raises(TopopruneError, match="apply a mask first"):
        CompactConv2d.from_masked(nn.Conv2d(4, 4, 3))


def test_elementwise_random_mask_is_refused():
    conv = nn.Conv2d(16, 16, 3)
    mask = torch.rand(conv.weight.shape, generator=torch.Generator().manual_seed(0)) < 0.1
    nn.utils.prune.custom_from_mask(conv, "weight", mask.float())
    with pytest.raises(TopopruneError, match="no block structure"):
        CompactConv2d.from_masked(conv)


def test_grouped_conv_is_refused():
    conv = nn.Conv2d(8, 8, 3, groups=2)
    nn.utils.prune.custom_from_mask(conv, "weight", torch.ones_like(conv.weight))
    with pytest.raises(TopopruneError, match="groups=1"):
        CompactConv2d.from_masked(conv)


def test_compact_form_stores_k_over_n_of_the_weights():
    conv = masked_conv(circulant(64, 4), 128, 128, kernel_size=3)
    compact = CompactConv2d.from_masked(conv)
    assert compact.weight.numel() * 16 == conv.weight_orig.numel()


@settings(max_examples=30, deadline=None)
@given(case=conv_cases())
def test_counter_gives_the_compact_conv_the_masked_convs_counts(case):
    conv, x = case
    compact = CompactConv2d.from_masked(conv)
    masked_counts = count(nn.Sequential(conv), tuple(x.shape[1:]))
    compact_counts = count(nn.Sequential(compact), tuple(x.shape[1:]))
    for field in ("params", "macs", "dense_params", "dense_macs"):
        assert getattr(compact_counts, field) == getattr(masked_counts, field), field
    assert compact_counts.uncounted == [] and compact_counts.layers[0].masked
