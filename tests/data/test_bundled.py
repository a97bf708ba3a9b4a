import pytest
import torch

from topoprune.data import load_dataset


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist5k")


def all_items(splits):
    return [splits.train, splits.val, splits.test]


def test_digits():
    splits = load_dataset("digits")
    assert [len(part) for part in all_items(splits)] == [1294, 144, 359]
    assert (splits.num_classes, splits.in_channels, splits.image_size) == (10, 1, (8, 8))
    images = torch.cat([part.images for part in all_items(splits)])
    labels = torch.cat([part.labels for part in all_items(splits)])
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert torch.equal(images * 16, (images * 16).round())  # sixteenths: 0..16 scaled
    assert sorted(labels.unique().tolist()) == list(range(10))
    x, y = splits.train[0]
    assert x.shape == (1, 8, 8) and isinstance(y, int)


def test_mnist5k(mnist5k):
    assert [len(part) for part in all_items(mnist5k)] == [3600, 400, 1000]
    assert (mnist5k.num_classes, mnist5k.in_channels, mnist5k.image_size) == (10, 1, (28, 28))
    labels = torch.cat([part.labels for part in all_items(mnist5k)])
    assert labels.bincount().tolist() == [500] * 10
    x, y = mnist5k.test[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= y <= 9
    images = torch.cat([part.images for part in all_items(mnist5k)])
    assert images.dtype == torch.uint8 and images.min() == 0 and images.max() == 255
    assert mnist5k.mean[0] == pytest.approx(0.1324, abs=1e-3)
    assert mnist5k.std[0] == pytest.approx(0.3098, abs=1e-3)


def test_mnist5k_split_seed_moves_only_val(mnist5k):
    other = load_dataset("mnist5k", split_seed=1)
    assert torch.equal(other.test.images, mnist5k.test.images)
    assert not torch.equal(other.val.images, mnist5k.val.images)
