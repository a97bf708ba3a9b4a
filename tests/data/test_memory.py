import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.data.memory import InMemoryImages, channel_stats, to_unit_float
from topoprune.errors import TopopruneError


def test_uint8_items_are_scaled_floats():
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).view(2, 3, 2, 2) * 10
    data = InMemoryImages(images, torch.tensor([4, 7]))
    x, y = data[1]
    assert x.dtype == torch.float32 and x.shape == (3, 2, 2)
    assert torch.equal(x, images[1].float() / 255)
    assert y == 7 and isinstance(y, int)
    assert len(data) == 2
    assert repr(data) == "InMemoryImages(2 images 3×2×2 torch.uint8)"


def test_float_items_are_kept():
    images = torch.rand(3, 1, 4, 4)
    data = InMemoryImages(images, torch.tensor([0, 1, 2], dtype=torch.int32))
    assert data.labels.dtype == torch.int64
    assert torch.equal(data[2][0], images[2])


def test_subset_copies_in_order():
    images = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1)
    data = InMemoryImages(images, torch.arange(5))
    part = data.subset(torch.tensor([3, 0]))
    assert [part[i][1] for i in range(len(part))] == [3, 0]
    part.images += 100
    assert torch.equal(data.images, images)


@pytest.mark.parametrize(
    "images, labels",
    [
        (torch.zeros(2, 3, 4), torch.zeros(2)),
        (torch.zeros(2, 1, 3, 4, dtype=torch.float64), torch.zeros(2)),
        (torch.zeros(2, 1, 3, 4), torch.zeros(3)),
    ],
)
def test_rejects_bad_tensors(images, labels):
    with pytest.raises(TopopruneError):
        InMemoryImages(images, labels)


def test_to_unit_float():
    assert torch.equal(
        to_unit_float(torch.tensor([0, 51, 255], dtype=torch.uint8)), torch.tensor([0.0, 0.2, 1.0])
    )


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 9),
    st.integers(1, 3),
    st.integers(1, 5),
    st.integers(1, 4),
    st.integers(0, 2**31 - 1),
)
def test_channel_stats_match_torch(count, channels, side, chunk, seed):
    images = torch.randint(
        0,
        256,
        (count, channels, side, side),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(seed),
    )
    mean, std = channel_stats(images, chunk=chunk)
    as_float = images.double() / 255
    ref_mean = as_float.mean(dim=(0, 2, 3))
    ref_std = as_float.std(dim=(0, 2, 3), unbiased=False)
    ref_std = torch.where(ref_std > 1e-6, ref_std, torch.ones_like(ref_std))
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), ref_mean, atol=1e-12)
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), ref_std, atol=1e-9)


def test_constant_channel_gets_unit_std():
    images = torch.stack([torch.full((4, 4), 0.3), torch.eye(4)]).unsqueeze(0)
    mean, std = channel_stats(images)
    assert mean[0] == pytest.approx(0.3) and std[0] == 1.0
    assert mean[1] == pytest.approx(0.25) and std[1] == pytest.approx(0.4330127, abs=1e-6)
