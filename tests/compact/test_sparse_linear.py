"""SparseLinear: exact masked-linear outputs and gradients, native kernel and torch fallback."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from topoprune.compact import slice_kernel
from topoprune.compact.sparse_linear import SparseLinear
from topoprune.errors import TopopruneError
from topoprune.measure import count

from .helpers import needs_slice_kernel, no_slice_library, torch_threads

CLOSE = {"rtol": 1e-4, "atol": 1e-5}


@st.composite
def linear_cases(draw):
    """A masked Linear (1..40 features each way, element-wise mask of any density, sometimes
    with an empty and a full row) and an input of 0..20 rows, 1-D or with extra dimensions."""
    in_features, out_features = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    density = draw(st.sampled_from([0.0, 0.03, 0.1, 0.5, 1.0]))
    mask = (torch.rand(out_features, in_features, generator=generator) < density).float()
    if draw(st.booleans()):
        mask[draw(st.integers(0, out_features - 1))] = 0
    if draw(st.booleans()):
        mask[draw(st.integers(0, out_features - 1))] = 1
    torch.manual_seed(draw(st.integers(0, 99)))
    linear = nn.Linear(in_features, out_features, bias=draw(st.booleans()))
    prune.custom_from_mask(linear, "weight", mask)
    leading = draw(st.sampled_from([(), (1,), (3,), (16,), (20,), (2, 5), (0,)]))
    return linear, torch.randn(*leading, in_features, generator=generator)


@settings(max_examples=80, deadline=None)
@given(case=linear_cases(), relu=st.booleans())
def test_forward_equals_masked_linear(case, relu):
    linear, x = case
    sparse = SparseLinear.from_masked(linear)
    sparse.activation = "relu" if relu else None
    with torch.no_grad():
        expected = torch.relu(linear(x)) if relu else linear(x)
        torch.testing.assert_close(sparse(x), expected, **CLOSE)


@needs_slice_kernel
@settings(max_examples=40, deadline=None)
@given(case=linear_cases(), relu=st.booleans())
def test_native_path_equals_torch_fallback(case, relu):
    linear, x = case
    sparse = SparseLinear.from_masked(linear)
    sparse.activation = "relu" if relu else None
    with torch.no_grad():
        assert sparse.native_supported(x)
        native = sparse(x)
        with no_slice_library():
            assert not sparse.native_supported(x)
            fallback = sparse(x)
    torch.testing.assert_close(native, fallback, **CLOSE)


@needs_slice_kernel
def test_large_products_split_over_threads_exactly():
    mask = (torch.rand(256, 512, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    linear = prune.custom_from_mask(nn.Linear(512, 256), "weight", mask)
    sparse = SparseLinear.from_masked(linear)
    x = torch.randn(70, 512)  # 70 rows x 65k kept weights: past the threading threshold
    with torch_threads(3):
        with torch.no_grad():
            torch.testing.assert_close(sparse(x), linear(x), rtol=1e-4, atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(case=linear_cases())
def test_gradients_equal_masked_linear_at_kept_weights(case):
    linear, x = case
    sparse = SparseLinear.from_masked(linear)
    x_masked, x_sparse = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn_like(linear(x))
    (linear(x_masked) * upstream).sum().backward()
    (sparse(x_sparse) * upstream).sum().backward()  # autograd needed: the torch path
    rows = sparse.rows()
    torch.testing.assert_close(
        sparse.weight.grad, linear.weight_orig.grad[rows, sparse.col], **CLOSE
    )
    torch.testing.assert_close(x_sparse.grad, x_masked.grad, **CLOSE)
    if linear.bias is not None:
        torch.testing.assert_close(sparse.bias.grad, linear.bias.grad, **CLOSE)


def test_unmasked_linear_is_refused():
    with pytest.raises(TopopruneError, match="apply a mask first"):
        SparseLinear.from_masked(nn.Linear(4, 3))
    with pytest.raises(TopopruneError, match="activation"):
        SparseLinear(torch.tensor([0, 0]), torch.zeros(0), 3, activation="tanh")


def test_without_the_library_the_layer_runs_torch():
    linear = prune.random_unstructured(nn.Linear(30, 12), "weight", 0.9)
    sparse = SparseLinear.from_masked(linear)
    x = torch.randn(5, 30)
    with no_slice_library(), torch.no_grad():
        assert not slice_kernel.slice_kernel_available()
        torch.testing.assert_close(sparse(x), linear(x), **CLOSE)


@settings(max_examples=20, deadline=None)
@given(case=linear_cases())
def test_counts_round_trip_and_dense_weight(case):
    linear, x = case
    sparse = SparseLinear.from_masked(linear)
    shape = tuple(x.shape[1:]) if x.dim() > 1 else tuple(x.shape)
    masked_counts = count(nn.Sequential(linear), shape)
    sparse_counts = count(nn.Sequential(sparse), shape)
    for field in ("params", "macs", "dense_params", "dense_macs"):
        assert getattr(sparse_counts, field) == getattr(masked_counts, field), field
    dense = (linear.weight_orig * linear.weight_mask).detach()
    torch.testing.assert_close(sparse.dense_weight(), dense)
    back = sparse.to_masked()
    torch.testing.assert_close(back.weight_mask, linear.weight_mask)
    with torch.no_grad():
        torch.testing.assert_close(back(x), linear(x), **CLOSE)
