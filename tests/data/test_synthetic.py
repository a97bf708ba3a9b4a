import pytest
import torch

from topoprune.data import load_dataset
from topoprune.data.synthetic import load_synthetic
from topoprune.errors import TopopruneError


def test_shapes_and_balance():
    loaded = load_synthetic(num_classes=4, image_size=(5, 6), in_channels=2, size=30, seed=3)
    assert loaded.train.images.shape == (30, 2, 5, 6)
    assert loaded.train.images.dtype == torch.float32
    assert loaded.train.labels.bincount().tolist() == [8, 8, 7, 7]
    assert 0 <= loaded.train.images.min() and loaded.train.images.max() <= 1
    assert loaded.test is None and loaded.num_classes == 4


def test_seed_fixes_content():
    first, again = load_synthetic(seed=5, size=20), load_synthetic(seed=5, size=20)
    other = load_synthetic(seed=6, size=20)
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.train.labels, again.train.labels)
    assert not torch.equal(first.train.images, other.train.images)


def test_noiseless_items_are_class_prototypes():
    loaded = load_synthetic(num_classes=3, image_size=4, size=12, noise=0.0)
    for label in range(3):
        same_class = loaded.train.images[loaded.train.labels == label]
        assert torch.equal(same_class, same_class[:1].expand_as(same_class))


def test_through_load_dataset():
    splits = load_dataset("synthetic", num_classes=3, image_size=8, in_channels=1, size=50)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 4, 10)
    assert (splits.num_classes, splits.in_channels, splits.image_size) == (3, 1, (8, 8))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_classes": 0}, "num_classes must be a positive integer"),
        ({"in_channels": -1}, "in_channels must be a positive integer"),
        ({"size": 2.5}, "size must be a positive integer"),
        ({"image_size": (3, 0)}, "image_size must be a positive int"),
        ({"noise": -0.1}, "noise must be a non-negative number"),
        ({"seed": -2}, "seed must be a non-negative integer"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(TopopruneError, match=f"^{message}"):
        load_synthetic(**options)
