import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.data import DatasetSplits, dataset_options, list_datasets, load_dataset
from topoprune.data.synthetic import load_synthetic
from topoprune.errors import TopopruneError


def test_list_datasets():
    assert list_datasets() == [
        "cifar10",
        "cifar100",
        "digits",
        "imagefolder",
        "mnist5k",
        "svhn",
        "synthetic",
    ]


def test_dataset_options():
    assert dataset_options("digits") == {}
    assert dataset_options("synthetic") == {
        "num_classes": 10,
        "image_size": 32,
        "in_channels": 3,
        "size": 256,
        "noise": 0.5,
        "seed": 0,
    }


def test_unknown_dataset():
    with pytest.raises(TopopruneError) as caught:
        load_dataset("imagenet")
    assert str(caught.value) == (
        "unknown dataset 'imagenet'; choose one of cifar10, cifar100, digits, imagefolder, "
        "mnist5k, svhn, synthetic"
    )


def test_unknown_option():
    with pytest.raises(TopopruneError) as caught:
        load_dataset("synthetic", colour=True)
    assert str(caught.value) == (
        "synthetic: unknown option 'colour'; it takes num_classes, image_size, in_channels, "
        "size, noise, seed"
    )
    with pytest.raises(TopopruneError, match="^digits: unknown option 'size'; it takes no options"):
        load_dataset("digits", size=3)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn", "imagefolder"])
def test_root_required(name):
    with pytest.raises(TopopruneError, match=f"^{name}: no dataset root given; pass --root DIR"):
        load_dataset(name)


def fingerprints(dataset):
    """One number per image: its pixel sum, unique for noisy synthetic images."""
    return [round(dataset[i][0].sum().item(), 4) for i in range(len(dataset))]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10**6), st.floats(0, 0.5))
def test_splits_partition_the_data(split_seed, val_fraction):
    options = {"num_classes": 3, "image_size": 3, "in_channels": 1, "size": 40}
    splits = load_dataset("synthetic", split_seed=split_seed, val_fraction=val_fraction, **options)
    assert isinstance(splits, DatasetSplits)
    train, val, test = (fingerprints(part) for part in (splits.train, splits.val, splits.test))
    assert len(test) == 8 and len(val) == round(val_fraction * 32)
    assert len(train) + len(val) == 32
    everything = train + val + test
    assert len(set(everything)) == 40  # no image in two splits
    assert sorted(everything) == sorted(fingerprints(load_synthetic(**options).train))


def test_same_seed_same_split_other_seed_other_split():
    first = load_dataset("synthetic", split_seed=11, size=60)
    again = load_dataset("synthetic", split_seed=11, size=60)
    other = load_dataset("synthetic", split_seed=12, size=60)
    assert torch.equal(first.val.images, again.val.images)
    assert torch.equal(first.train.images, again.train.images)
    assert not torch.equal(first.val.images, other.val.images)


def test_root_as_string(tmp_path):
    with pytest.raises(TopopruneError, match=f"got {tmp_path} "):
        load_dataset("svhn", root=str(tmp_path))
