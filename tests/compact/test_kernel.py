import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune import native
from topoprune.compact import kernel


def dense_reference(x, weight, in_index, out_index, bias, out_channels, padding, dilation):
    """The group-gathered conv written out as one dense conv."""
    groups, group_out, group_in = weight.shape[:3]
    dense = torch.zeros(out_channels, x.shape[1], *weight.shape[3:])
    for g in range(groups):
        for o in range(group_out):
            for s in range(group_in):
                if out_index[g, o] >= 0 and in_index[g, s] >= 0:
                    dense[out_index[g, o], in_index[g, s]] = weight[g, o, s]
    return F.conv2d(x, dense, bias, padding=padding, dilation=dilation)


@st.composite
def kernel_problems(draw):
    generator = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    groups = draw(st.integers(1, 5))
    tile = draw(st.sampled_from(kernel.TILES))
    group_out = tile[0] * draw(st.integers(1, 2))
    group_in = draw(st.integers(1, 6))
    in_channels = draw(st.integers(group_in, group_in + 6))
    out_channels = groups * group_out - draw(st.integers(0, group_out - 1))
    order = torch.randperm(groups * group_out, generator=generator)
    out_index = torch.where(order < out_channels, order, -1).view(groups, group_out)
    in_index = torch.stack(
        [torch.randperm(in_channels, generator=generator)[:group_in] for _ in range(groups)]
    )
    in_index[:, draw(st.integers(1, group_in)) :] = -1  # padded input slots
    kernel_size = draw(st.sampled_from([(1, 1), (3, 3), (2, 3), (5, 1)]))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    min_height = max(1, dilation[0] * (kernel_size[0] - 1) + 1 - 2 * padding[0])
    min_width = max(1, dilation[1] * (kernel_size[1] - 1) + 1 - 2 * padding[1])
    height, width = draw(st.integers(min_height, 12)), draw(st.integers(min_width, 40))
    x = torch.randn(draw(st.integers(1, 3)), in_channels, height, width, generator=generator)
    weight = torch.randn(groups, group_out, group_in, *kernel_size, generator=generator)
    bias = torch.randn(out_channels, generator=generator) if draw(st.booleans()) else None
    threads = draw(st.integers(1, 3))
    return (x, weight, in_index, out_index, bias, out_channels, padding, dilation), tile, threads


needs_kernel = pytest.mark.skipif(
    not kernel.kernel_available(), reason="no C++ compiler here: the native kernel cannot build"
)


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(problem=kernel_problems())
def test_native_kernel_equals_dense_conv(problem):
    arguments, tile, threads = problem
    torch.set_num_threads(threads)
    try:
        result = kernel.block_conv2d(*arguments, tile)
    finally:
        torch.set_num_threads(1)
    torch.testing.assert_close(result, dense_reference(*arguments), rtol=1e-4, atol=1e-4)


def test_without_the_library_the_call_says_not_available(monkeypatch):
    monkeypatch.setattr(kernel, "load_kernel", lambda: None)
    x, weight = torch.randn(1, 4, 5, 5), torch.randn(2, 1, 2, 3, 3)
    in_index, out_index = torch.tensor([[0, 1], [2, 3]]), torch.tensor([[0], [1]])
    with pytest.raises(RuntimeError, match="not available"):
        kernel.block_conv2d(x, weight, in_index, out_index, None, 2, (1, 1), (1, 1), (1, 1))


def test_kernel_builds_wherever_a_compiler_exists():
    assert kernel.kernel_available() == (native.compiler() is not None)


def test_unsupported_tile_is_an_error_not_a_wrong_answer():
    x, weight = torch.randn(1, 4, 5, 5), torch.randn(2, 3, 2, 3, 3)
    in_index, out_index = torch.tensor([[0, 1], [2, 3]]), torch.tensor([[0, 1, 2], [3, 4, 5]])
    reason = "status 1" if kernel.kernel_available() else "not available"
    with pytest.raises(RuntimeError, match=reason):  # a 2-row tile cannot cover 3-output groups
        kernel.block_conv2d(x, weight, in_index, out_index, None, 6, (1, 1), (1, 1), (2, 1))


def test_no_compiler_means_no_kernel_and_one_warning(monkeypatch):
    monkeypatch.setattr(native, "compiler", lambda: None)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        assert kernel.load_kernel.__wrapped__() is None


def test_failed_build_means_no_kernel_and_one_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("TOPOPRUNE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernel, "FLAGS", (*kernel.FLAGS, "-fno-such-flag-topoprune"))
    with pytest.warns(RuntimeWarning, match="building the native kernel failed"):
        assert kernel.load_kernel.__wrapped__() is None
    assert list((tmp_path / "kernels").iterdir()) == []  # no half-written library left


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("TOPOPRUNE_NO_NATIVE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernel.load_kernel.__wrapped__() is None


@needs_kernel
def test_built_library_is_cached_and_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("TOPOPRUNE_CACHE_DIR", str(tmp_path))
    assert kernel.load_kernel.__wrapped__() is not None
    built = list((tmp_path / "kernels").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so"

    def no_second_build(compiler, source, flags, target):
        raise AssertionError("the cached library should have been reused")

    monkeypatch.setattr(native, "_build", no_second_build)
    assert kernel.load_kernel.__wrapped__() is not None


@needs_kernel
def test_empty_batch_gives_empty_output():
    x, weight = torch.randn(0, 4, 5, 5), torch.randn(2, 1, 2, 3, 3)
    in_index, out_index = torch.tensor([[0, 1], [2, 3]]), torch.tensor([[0], [1]])
    out = kernel.block_conv2d(x, weight, in_index, out_index, None, 2, (1, 1), (1, 1), (1, 1))
    assert out.shape == (0, 2, 5, 5)
