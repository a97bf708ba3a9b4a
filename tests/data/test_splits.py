import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.data.memory import InMemoryImages, channel_stats
from topoprune.data.splits import TEST_FRACTION, LoadedData, build_splits, carve, take
from topoprune.errors import TopopruneError


def numbered(count, channels=1):
    """Images whose every pixel holds the image's index, so splits can be traced back."""
    ids = torch.arange(count, dtype=torch.float32)
    images = ids.view(count, 1, 1, 1).expand(count, channels, 2, 2).contiguous()
    return InMemoryImages(images, torch.arange(count) % 3)


def ids_of(dataset):
    return [int(dataset[i][0][0, 0, 0]) for i in range(len(dataset))]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.floats(0, 0.99), st.integers(0, 2**32 - 1))
def test_carve_partitions(size, fraction, seed):
    kept, carved = carve(size, fraction, seed)
    assert len(carved) == round(fraction * size)
    assert len(kept) + len(carved) == size
    assert sorted(kept.tolist() + carved.tolist()) == list(range(size))
    assert kept.tolist() == sorted(kept.tolist()) and carved.tolist() == sorted(carved.tolist())
    again_kept, again_carved = carve(size, fraction, seed)
    assert torch.equal(kept, again_kept) and torch.equal(carved, again_carved)


def test_carve_depends_on_seed():
    assert not torch.equal(carve(100, 0.1, 0)[1], carve(100, 0.1, 1)[1])


def test_take_lazy_subset_for_other_datasets():
    data = list(range(10))
    part = take(data, torch.tensor([2, 5]))
    assert [part[0], part[1]] == [2, 5]


@settings(max_examples=30, deadline=None)
@given(st.integers(5, 200), st.floats(0, 0.9), st.integers(0, 1000))
def test_official_test_split_is_kept(train_size, val_fraction, seed):
    loaded = LoadedData(numbered(train_size), numbered(4), num_classes=3)
    splits = build_splits("tiny", loaded, seed, val_fraction)
    train, val = ids_of(splits.train), ids_of(splits.val)
    assert len(val) == round(val_fraction * train_size)
    assert sorted(train + val) == list(range(train_size))
    assert ids_of(splits.test) == [0, 1, 2, 3]
    assert (splits.mean, splits.std) == channel_stats(splits.train.images)
    assert (splits.num_classes, splits.in_channels, splits.image_size) == (3, 1, (2, 2))
    assert splits.name == "tiny"


def test_carved_test_split_ignores_split_seed():
    loaded = LoadedData(numbered(50, channels=2), test=None, num_classes=3)
    first = build_splits("tiny", loaded, 0, 0.1)
    second = build_splits("tiny", loaded, 7, 0.1)
    assert len(first.test) == round(TEST_FRACTION * 50) == 10
    assert ids_of(first.test) == ids_of(second.test)
    assert ids_of(first.val) != ids_of(second.val)
    assert (len(first.train), len(first.val)) == (36, 4)
    assert set(ids_of(first.test)).isdisjoint(ids_of(first.train) + ids_of(first.val))
    assert first.in_channels == 2


def test_given_stats_are_used():
    stats = ((0.1,), (0.2,))
    loaded = LoadedData(numbered(10), numbered(2), num_classes=3, stats=stats)
    splits = build_splits("tiny", loaded, 0, 0.1)
    assert (splits.mean, splits.std) == stats


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, "0.1", None])
def test_bad_val_fraction(fraction):
    loaded = LoadedData(numbered(10), numbered(2), num_classes=3)
    with pytest.raises(TopopruneError, match=r"^val_fraction must be a number in \[0, 1\)"):
        build_splits("tiny", loaded, 0, fraction)


@pytest.mark.parametrize("seed", [-1, 1.0, None])
def test_bad_split_seed(seed):
    loaded = LoadedData(numbered(10), numbered(2), num_classes=3)
    with pytest.raises(TopopruneError, match="^split_seed must be a non-negative integer"):
        build_splits("tiny", loaded, seed, 0.1)


def test_nothing_left_to_train_on():
    loaded = LoadedData(numbered(1), numbered(2), num_classes=3)
    with pytest.raises(TopopruneError, match="^tiny: 1 training images leave none to train on"):
        build_splits("tiny", loaded, 0, 0.9)
