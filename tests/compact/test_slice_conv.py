"""SliceSparseConv2d and its native kernel: exact masked-conv outputs, epilogue, fallbacks."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from topoprune.compact import slice_kernel
from topoprune.compact.epilogue import RELU, RELU6, apply_epilogue
from topoprune.compact.fuse import fuse_for_inference
from topoprune.compact.sparse_conv import SliceSparseConv2d, csr_from_support
from topoprune.errors import TopopruneError
from topoprune.measure import count

from .helpers import needs_slice_kernel, no_slice_library, torch_threads

CLOSE = {"rtol": 1e-4, "atol": 1e-5}
INF = math.inf


@st.composite
def supports(draw, rows: int, cols: int) -> torch.Tensor:
    """A random (rows, cols) bool support, sometimes with an empty and a full row."""
    generator = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    density = draw(st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.6, 1.0]))
    support = torch.rand(rows, cols, generator=generator) < density
    if draw(st.booleans()):
        support[draw(st.integers(0, rows - 1))] = False  # an output reading nothing
    if draw(st.booleans()):
        support[draw(st.integers(0, rows - 1))] = True  # an output reading everything
    return support


def slice_masked_conv(support: torch.Tensor, seed: int = 0, **options) -> nn.Conv2d:
    """A random Conv2d with whole kernel slices kept where ``support`` (out, in) is True."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(support.shape[1], support.shape[0], **options)
    mask = support[:, :, None, None].expand_as(conv.weight).float()
    return prune.custom_from_mask(conv, "weight", mask.contiguous())


@st.composite
def conv_cases(draw):
    """A slice-masked conv (channels 1..40, kernel 1/3/5, padding 0..2, dilation 1..2) and an
    input (batch 1..4, spatial up to 12) it fits."""
    out_channels, in_channels = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    kernel = draw(st.sampled_from([1, 3, 5]))
    padding, dilation = draw(st.integers(0, 2)), draw(st.integers(1, 2))
    conv = slice_masked_conv(
        draw(supports(out_channels, in_channels)),
        seed=draw(st.integers(0, 99)),
        kernel_size=kernel,
        padding=padding,
        dilation=dilation,
        bias=draw(st.booleans()),
    )
    smallest = max(1, dilation * (kernel - 1) + 1 - 2 * padding)
    height, width = draw(st.integers(smallest, 12)), draw(st.integers(smallest, 12))
    x = torch.randn(draw(st.integers(1, 4)), in_channels, height, width)
    return conv, x


@settings(max_examples=60, deadline=None)
@given(case=conv_cases())
def test_forward_equals_masked_conv(case):
    conv, x = case
    sparse = SliceSparseConv2d.from_masked(conv)
    with torch.no_grad():
        torch.testing.assert_close(sparse(x), conv(x), **CLOSE)


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(), relu=st.booleans(), with_residual=st.booleans())
def test_fused_epilogue_equals_conv_plus_residual_then_relu(case, relu, with_residual):
    conv, x = case
    sparse = SliceSparseConv2d.from_masked(conv)
    sparse.activation = "relu" if relu else None
    with torch.no_grad():
        expected = conv(x)
        residual = torch.randn_like(expected) if with_residual else None
        if residual is not None:
            expected = expected + residual
        if relu:
            expected = torch.relu(expected)
        torch.testing.assert_close(sparse(x, residual), expected, **CLOSE)


@needs_slice_kernel
@settings(max_examples=30, deadline=None)
@given(case=conv_cases(), relu=st.booleans())
def test_native_path_equals_torch_fallback(case, relu):
    conv, x = case
    sparse = SliceSparseConv2d.from_masked(conv)
    sparse.activation = "relu" if relu else None
    with torch.no_grad():
        residual = torch.randn_like(conv(x))
        assert sparse.direct_supported(x, residual)
        native = sparse(x, residual)
        with no_slice_library():
            assert not sparse.direct_supported(x, residual)
            fallback = sparse(x, residual)
    torch.testing.assert_close(native, fallback, **CLOSE)


def csr_problem(draw, generator, support, x, geometry, mode, tile):
    """The kernel's arguments and options for ``support`` (C_out, C_in) on ``x`` with
    ``geometry`` = (kernel_size, padding, dilation), random weights, bias, residual and clamp,
    the dense masked conv's result, and a thread count."""
    kernel_size, padding, dilation = geometry
    out_channels, in_channels = support.shape
    row_ptr, col, row = csr_from_support(support)
    weight = torch.randn(col.numel(), *kernel_size, generator=generator)
    bias = torch.randn(out_channels, generator=generator) if draw(st.booleans()) else None
    dense = torch.zeros(out_channels, in_channels, *kernel_size).index_put((row, col), weight)
    reference = F.conv2d(x, dense, bias, padding=padding, dilation=dilation)
    residual = torch.randn_like(reference) if draw(st.booleans()) else None
    clamp = draw(st.sampled_from([(-INF, INF), RELU, RELU6, (-0.5, 0.5)]))
    expected = apply_epilogue(reference, residual, clamp)
    arguments = (x, weight, row_ptr, col, bias, padding, dilation)
    options = {"residual": residual, "clamp": clamp, "mode": mode, "tile": tile}
    return arguments, options, expected, draw(st.integers(1, 3))


def check_problem(problem) -> None:
    """The kernel on ``problem`` (see ``csr_problem``) at its thread count equals the dense
    masked conv."""
    arguments, options, expected, threads = problem
    with torch_threads(threads):
        result = slice_kernel.slice_conv2d(*arguments, **options)
    torch.testing.assert_close(result, expected, **CLOSE)


@st.composite
def kernel_problems(draw):
    """A CSR problem for the kernel itself, any kernel shape, 1..20 images (so more than one
    group of 16 in the batched forms), and a forced form, tile and thread count."""
    generator = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    out_channels, in_channels = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    support = draw(supports(out_channels, in_channels))
    kernel_size = draw(st.sampled_from([(1, 1), (3, 3), (5, 5), (1, 3), (2, 3), (3, 1)]))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    min_height = max(1, dilation[0] * (kernel_size[0] - 1) + 1 - 2 * padding[0])
    min_width = max(1, dilation[1] * (kernel_size[1] - 1) + 1 - 2 * padding[1])
    height, width = draw(st.integers(min_height, 11)), draw(st.integers(min_width, 19))
    x = torch.randn(draw(st.integers(1, 20)), in_channels, height, width, generator=generator)
    mode = draw(st.sampled_from(["auto", "planar", "batched", "batched_general"]))
    if mode == "planar":
        tile = (1, draw(st.integers(0, 8)))
    elif mode == "auto":
        tile = (0, 0)
    else:
        tile = draw(st.sampled_from([(0, 0), *slice_kernel.BATCHED_TILES]))
    return csr_problem(draw, generator, support, x, (kernel_size, padding, dilation), mode, tile)


@needs_slice_kernel
@settings(max_examples=120, deadline=None)
@given(problem=kernel_problems())
def test_kernel_equals_dense_conv_in_every_form_tile_and_thread_count(problem):
    check_problem(problem)


@st.composite
def run_supports(draw, rows: int, cols: int) -> torch.Tensor:
    """A (rows, cols) support whose rows come in runs of 1 to 10 identical rows (as block masks
    give: the output channels of a block read the same input channels), or plain random."""
    if draw(st.booleans()):
        return draw(supports(rows, cols))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    density = draw(st.sampled_from([0.1, 0.3, 0.6]))
    support = torch.zeros(rows, cols, dtype=torch.bool)
    start = 0
    while start < rows:
        length = draw(st.integers(1, 10))
        support[start : start + length] = torch.rand(cols, generator=generator) < density
        start += length
    return support


def _tiny_sizes(kernel_size, padding, dilation) -> list[tuple[int, int]]:
    """The (height, width) whose input and output planes have at most 16 values."""
    reach = [d * (k - 1) for d, k in zip(dilation, kernel_size, strict=True)]
    return [
        (h, w)
        for h in range(1, 17)
        for w in range(1, 17)
        if h * w <= 16
        and 1 <= h + 2 * padding[0] - reach[0]
        and 1 <= w + 2 * padding[1] - reach[1]
        and (h + 2 * padding[0] - reach[0]) * (w + 2 * padding[1] - reach[1]) <= 16
    ]


@st.composite
def new_form_problems(draw):
    """A CSR problem for the ``rows`` form (3x3 kernel, dilation 1, planes up to 40 wide, so
    several vectors per row, a partial last one, and several bands; ``batched`` likewise), the
    ``tiny`` form (any kernel, input and output planes of at most 16 values) or the ``flat``
    form ("same" convolutions, odd kernels up to 5x5, dilation up to 2, planes of 17 to 480
    values), with runs of output channels that keep the same input channels, 1..20 images, and
    a forced tile and thread count."""
    generator = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    mode = draw(st.sampled_from(["rows", "tiny", "flat", "batched"]))
    out_channels, in_channels = draw(st.integers(1, 20)), draw(st.integers(1, 12))
    support = draw(run_supports(out_channels, in_channels))
    if mode in ("rows", "batched"):  # batched: its 3x3 form, runs two or four at a time
        kernel_size, dilation = (3, 3), (1, 1)
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        height = draw(st.integers(max(1, 3 - 2 * padding[0]), 20))
        width = draw(st.integers(max(1, 3 - 2 * padding[1]), 40))
        tiles = slice_kernel.ROWS_TILES if mode == "rows" else slice_kernel.BATCHED_TILES
        tile = draw(st.sampled_from([(0, 0), *tiles]))
    elif mode == "flat":  # "same": odd kernel, padding half its dilated reach; > 16 values
        kernel_size = draw(st.sampled_from([(1, 1), (3, 3), (5, 5), (1, 3), (3, 1), (5, 3)]))
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel_size, strict=True))
        height, width = draw(st.integers(1, 20)), draw(st.integers(1, 24))
        if height * width <= 16:
            width = 17
        tile = (0, 0)
    else:
        kernel_size = draw(st.sampled_from([(1, 1), (3, 3), (2, 3), (3, 1)]))
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        sizes = _tiny_sizes(kernel_size, padding, dilation)
        if not sizes:  # the dilated kernel needs more than 16 values: no padding, dilation 1
            padding, dilation = (0, 0), (1, 1)
            sizes = _tiny_sizes(kernel_size, padding, dilation)
        height, width = draw(st.sampled_from(sizes))
        tile = (0, 0)
    x = torch.randn(draw(st.integers(1, 20)), in_channels, height, width, generator=generator)
    return csr_problem(draw, generator, support, x, (kernel_size, padding, dilation), mode, tile)


@needs_slice_kernel
@settings(max_examples=200, deadline=None)
@given(problem=new_form_problems())
def test_rows_tiny_and_flat_forms_equal_dense_conv(problem):
    check_problem(problem)


@needs_slice_kernel
@pytest.mark.parametrize(
    ("channels", "size", "batch"),
    [(128, 16, 1), (64, 32, 1), (256, 8, 1), (512, 4, 1), (512, 2, 1), (32, 16, 20), (64, 8, 3)],
)
def test_auto_on_block_masks_equals_dense_conv(channels, size, batch):
    """Block-structured masks (RGP-like: every output block reads the input blocks of its 4
    graph neighbours, 16 blocks), the shapes `auto` sends to rows, flat, tiny and batched, with
    a folded BatchNorm's bias, a residual and a ReLU, against the dense conv."""
    generator = torch.Generator().manual_seed(channels + size)
    blocks = 16
    neighbours = torch.stack([torch.randperm(blocks, generator=generator)[:4] for _ in range(16)])
    adjacency = torch.zeros(blocks, blocks, dtype=torch.bool)
    adjacency[torch.arange(blocks)[:, None], neighbours] = True
    node = torch.arange(channels) * blocks // channels
    support = adjacency[node[:, None], node[None, :]]
    row_ptr, col, row = csr_from_support(support)
    weight = torch.randn(col.numel(), 3, 3, generator=generator)
    bias = torch.randn(channels, generator=generator)
    x = torch.randn(batch, channels, size, size, generator=generator)
    dense = torch.zeros(channels, channels, 3, 3).index_put((row, col), weight)
    reference = F.conv2d(x, dense, bias, padding=1)
    residual = torch.randn_like(reference)
    result = slice_kernel.slice_conv2d(
        x, weight, row_ptr, col, bias, (1, 1), (1, 1), residual=residual, clamp=RELU
    )
    torch.testing.assert_close(result, torch.relu(reference + residual), rtol=1e-4, atol=1e-4)


@needs_slice_kernel
def test_new_forms_refuse_what_they_cannot_compute():
    row_ptr, col = torch.tensor([0, 1, 2]), torch.tensor([0, 2])
    with pytest.raises(RuntimeError, match="status 1"):
        slice_kernel.slice_conv2d(
            torch.randn(1, 3, 8, 8), torch.randn(2, 5, 5), row_ptr, col, None, (2, 2), (1, 1),
            mode="rows",
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="status 1"):
        slice_kernel.slice_conv2d(
            torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3), row_ptr, col, None, (1, 1), (1, 1),
            mode="tiny",
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="status 1"):
        slice_kernel.slice_conv2d(
            torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3), row_ptr, col, None, (1, 1), (1, 1),
            mode="rows", tile=(3, 3),
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="status 1"):  # not "same": the plane shrinks
        slice_kernel.slice_conv2d(
            torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3), row_ptr, col, None, (0, 0), (1, 1),
            mode="flat",
        )  # fmt: skip


@needs_slice_kernel
@pytest.mark.parametrize("mode", ["planar", "batched", "batched_general", "rows", "flat"])
def test_large_problems_split_over_threads_exactly(mode):
    generator = torch.Generator().manual_seed(7)
    support = torch.rand(48, 40, generator=generator) < 0.3
    row_ptr, col, row = csr_from_support(support)
    weight = torch.randn(col.numel(), 3, 3, generator=generator)
    x = torch.randn(21, 40, 12, 12, generator=generator)  # ~16M multiply-adds: threads start
    dense = torch.zeros(48, 40, 3, 3).index_put((row, col), weight)
    with torch_threads(3):
        result = slice_kernel.slice_conv2d(x, weight, row_ptr, col, None, (1, 1), (1, 1), mode=mode)
    torch.testing.assert_close(result, F.conv2d(x, dense, padding=1), rtol=1e-4, atol=1e-4)


@needs_slice_kernel
def test_kernel_refuses_an_unknown_tile():
    x, weight = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 3)
    row_ptr, col = torch.tensor([0, 1, 2]), torch.tensor([0, 2])
    with pytest.raises(RuntimeError, match="status 1"):
        slice_kernel.slice_conv2d(
            x, weight, row_ptr, col, None, (1, 1), (1, 1), mode="batched", tile=(5, 5)
        )
    with pytest.raises(RuntimeError, match="status 1"):
        slice_kernel.slice_conv2d(
            x, weight, row_ptr, col, None, (1, 1), (1, 1), mode="planar", tile=(1, 9)
        )


@needs_slice_kernel
def test_kernel_on_an_empty_batch_and_a_layer_with_no_kept_slices():
    row_ptr, col = torch.tensor([0, 1, 2]), torch.tensor([0, 2])
    out = slice_kernel.slice_conv2d(
        torch.randn(0, 3, 5, 5), torch.randn(2, 3, 3), row_ptr, col, None, (1, 1), (1, 1)
    )
    assert out.shape == (0, 2, 5, 5)
    bias = torch.tensor([1.0, -2.0])
    empty = slice_kernel.slice_conv2d(
        torch.randn(3, 3, 4, 4),
        torch.zeros(0, 3, 3),
        torch.zeros(3, dtype=torch.int64),
        torch.zeros(0, dtype=torch.int64),
        bias,
        (0, 0),
        (1, 1),
        mode="batched",
    )
    torch.testing.assert_close(empty, bias[None, :, None, None].expand(3, 2, 2, 2))


def test_a_partly_masked_slice_is_refused():
    conv = nn.Conv2d(4, 3, 3)
    mask = torch.ones_like(conv.weight)
    mask[1, 2, 0, 0] = 0  # one tap of one slice
    prune.custom_from_mask(conv, "weight", mask)
    with pytest.raises(TopopruneError, match="part of some kernel slices"):
        SliceSparseConv2d.from_masked(conv)


def test_unmasked_grouped_and_non_zero_padded_convs_are_refused():
    with pytest.raises(TopopruneError, match="apply a mask first"):
        SliceSparseConv2d.from_masked(nn.Conv2d(4, 4, 3))
    grouped = nn.Conv2d(4, 4, 3, groups=2)
    prune.custom_from_mask(grouped, "weight", torch.ones_like(grouped.weight))
    with pytest.raises(TopopruneError, match="groups=1"):
        SliceSparseConv2d.from_masked(grouped)
    reflect = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
    prune.custom_from_mask(reflect, "weight", torch.ones_like(reflect.weight))
    with pytest.raises(TopopruneError, match="padding_mode"):
        SliceSparseConv2d.from_masked(reflect)


def test_without_the_library_the_layer_runs_torch_and_the_call_says_not_available():
    conv = slice_masked_conv(torch.rand(6, 5) < 0.4, kernel_size=3, padding=1)
    sparse = SliceSparseConv2d.from_masked(conv)
    x = torch.randn(2, 5, 6, 6)
    with no_slice_library(), torch.no_grad():
        assert not slice_kernel.slice_kernel_available()
        torch.testing.assert_close(sparse(x), conv(x), **CLOSE)
        with pytest.raises(RuntimeError, match="not available"):
            slice_kernel.slice_conv2d(
                x, sparse.weight, sparse.row_ptr, sparse.col, None, (1, 1), (1, 1)
            )
        with pytest.raises(RuntimeError, match="not available"):
            slice_kernel.sparse_linear(
                torch.randn(2, 3), torch.ones(1), torch.tensor([0, 1]), torch.tensor([0]), None
            )


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("TOPOPRUNE_NO_NATIVE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert slice_kernel.load_slice_kernel.__wrapped__() is None


@settings(max_examples=25, deadline=None)
@given(case=conv_cases())
def test_gradients_equal_masked_conv_at_kept_weights(case):
    conv, x = case
    sparse = SliceSparseConv2d.from_masked(conv)
    x_masked, x_sparse = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn_like(conv(x))
    (conv(x_masked) * upstream).sum().backward()
    (sparse(x_sparse) * upstream).sum().backward()  # autograd needed: the torch path
    torch.testing.assert_close(
        sparse.weight.grad, conv.weight_orig.grad[sparse.rows(), sparse.col], **CLOSE
    )
    torch.testing.assert_close(x_sparse.grad, x_masked.grad, **CLOSE)
    if conv.bias is not None:
        torch.testing.assert_close(sparse.bias.grad, conv.bias.grad, **CLOSE)


def test_strides_and_same_padding_give_the_masked_conv():
    support = torch.rand(7, 5, generator=torch.Generator().manual_seed(3)) < 0.5
    for options in (
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 3, "padding": "same", "dilation": 2},
        {"kernel_size": (2, 4), "padding": "same"},  # uneven reach: torch pads one side more
        {"kernel_size": 3, "padding": "valid"},
    ):
        conv = slice_masked_conv(support, **options)
        sparse = SliceSparseConv2d.from_masked(conv)
        x = torch.randn(2, 5, 9, 8)
        with torch.no_grad():
            torch.testing.assert_close(sparse(x), conv(x), **CLOSE)
    assert SliceSparseConv2d.from_masked(
        slice_masked_conv(support, kernel_size=3, padding="same")
    ).padding == (1, 1)


@settings(max_examples=20, deadline=None)
@given(case=conv_cases())
def test_counts_round_trip_and_dense_weight(case):
    conv, x = case
    sparse = SliceSparseConv2d.from_masked(conv)
    masked_counts = count(nn.Sequential(conv), tuple(x.shape[1:]))
    sparse_counts = count(nn.Sequential(sparse), tuple(x.shape[1:]))
    for field in ("params", "macs", "dense_params", "dense_macs"):
        assert getattr(sparse_counts, field) == getattr(masked_counts, field), field
    torch.testing.assert_close(
        sparse.dense_weight(), (conv.weight_orig * conv.weight_mask).detach()
    )
    back = sparse.to_masked()
    torch.testing.assert_close(back.weight_mask, conv.weight_mask)
    with torch.no_grad():
        torch.testing.assert_close(back(x), conv(x), **CLOSE)


def test_batch_norm_folds_and_relu_fuses_for_inference():
    conv = slice_masked_conv(
        torch.rand(8, 6, generator=torch.Generator().manual_seed(1)) < 0.3, kernel_size=3, padding=1
    )
    norm = nn.BatchNorm2d(8)
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    model = nn.Sequential(SliceSparseConv2d.from_masked(conv), norm, nn.ReLU()).eval()
    fused = fuse_for_inference(model)
    kinds = {type(module).__name__ for module in fused.modules()}
    assert "FusedConv2d" in kinds and "BatchNorm2d" not in kinds and "ReLU" not in kinds
    x = torch.randn(3, 6, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), **CLOSE)


def test_activation_is_applied_before_a_fused_residual_and_blocks_folding():
    conv = slice_masked_conv(torch.rand(4, 3) < 0.7, kernel_size=1)
    sparse = SliceSparseConv2d.from_masked(conv)
    sparse.activation = "relu"
    x, residual = torch.randn(2, 3, 4, 4), torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        expected = (torch.relu(conv(x)) + residual).clamp(0, 6)
        torch.testing.assert_close(sparse.fused_forward(x, residual, RELU6), expected, **CLOSE)
    with pytest.raises(TopopruneError, match="activation"):
        sparse.scale_outputs(torch.ones(4), torch.zeros(4))
    with pytest.raises(TopopruneError, match="activation"):
        SliceSparseConv2d(torch.tensor([0, 0]), torch.zeros(0), 3, 1, activation="gelu")
