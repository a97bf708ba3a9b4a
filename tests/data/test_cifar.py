import pickle

import numpy as np
import pytest
import torch

from topoprune.data import load_dataset
from topoprune.errors import TopopruneError


def batch(first_id, count, label_key=b"labels", num_classes=10):
    """A pickle dict with ``count`` images; image i's first red pixel holds its id."""
    data = np.random.default_rng(first_id).integers(0, 256, (count, 3072), dtype=np.uint8)
    data[:, 0] = np.arange(first_id, first_id + count)
    labels = [(first_id + i) % num_classes for i in range(count)]
    return {b"data": data, label_key: labels, b"batch_label": b"tiny"}


def dump(path, content):
    with path.open("wb") as file:
        pickle.dump(content, file)


@pytest.fixture
def cifar10_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for index in range(5):
        dump(folder / f"data_batch_{index + 1}", batch(4 * index, 4))
    dump(folder / "test_batch", batch(100, 3))
    return tmp_path


@pytest.fixture
def cifar100_root(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    dump(folder / "train", batch(0, 30, b"fine_labels", 100))
    dump(folder / "test", batch(200, 5, b"fine_labels", 100))
    return tmp_path


def first_pixels(dataset):
    return [round(dataset[i][0][0, 0, 0].item() * 255) for i in range(len(dataset))]


def test_cifar10_reads_all_batches(cifar10_root):
    splits = load_dataset("cifar10", root=cifar10_root, val_fraction=0.25)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (15, 5, 3)
    assert sorted(first_pixels(splits.train) + first_pixels(splits.val)) == list(range(20))
    assert first_pixels(splits.test) == [100, 101, 102]
    assert (splits.num_classes, splits.in_channels, splits.image_size) == (10, 3, (32, 32))
    x, y = splits.test[2]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    assert y == 102 % 10
    raw = batch(100, 3)[b"data"][2]
    for channel, row, col in [(0, 0, 1), (1, 5, 7), (2, 31, 31)]:
        assert x[channel, row, col] == raw[channel * 1024 + row * 32 + col] / 255.0


def test_cifar10_root_may_be_the_batches_folder(cifar10_root):
    splits = load_dataset("cifar10", root=cifar10_root / "cifar-10-batches-py")
    assert len(splits.train) + len(splits.val) == 20


def test_cifar10_split_seed(cifar10_root):
    one = load_dataset("cifar10", root=cifar10_root, split_seed=3, val_fraction=0.25)
    same = load_dataset("cifar10", root=cifar10_root, split_seed=3, val_fraction=0.25)
    other = load_dataset("cifar10", root=cifar10_root, split_seed=4, val_fraction=0.25)
    assert first_pixels(one.val) == first_pixels(same.val)
    assert first_pixels(one.val) != first_pixels(other.val)
    assert set(first_pixels(one.val)).isdisjoint(first_pixels(one.train))


def test_cifar100_fine_labels(cifar100_root):
    splits = load_dataset("cifar100", root=cifar100_root, val_fraction=0.1)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (27, 3, 5)
    assert splits.num_classes == 100
    assert [splits.test[i][1] for i in range(5)] == [0, 1, 2, 3, 4]  # ids 200.. mod 100


def one_line_error(name, root):
    with pytest.raises(TopopruneError) as caught:
        load_dataset(name, root=root)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_root(tmp_path):
    message = one_line_error("cifar10", tmp_path / "nowhere")
    assert message == (
        "cifar10: expected ROOT/cifar-10-batches-py/data_batch_1..5 and test_batch (python "
        f"pickles with b'data' and b'labels'); got {tmp_path / 'nowhere'} (no such folder)"
    )
    assert "--root" in one_line_error("cifar100", None)


def test_missing_batch(cifar10_root):
    (cifar10_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    assert one_line_error("cifar10", cifar10_root).endswith("(data_batch_3: missing)")


def test_empty_root_names_first_batch(tmp_path):
    assert one_line_error("cifar100", tmp_path).endswith("(train: missing)")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"not a pickle\n at all", "test_batch: not a python pickle"),
        ([1, 2, 3], "test_batch: not a dict with b'data' and b'labels'"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "not a dict with b'data' and b'labels'"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "not uint8 N×3072"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "not uint8 N×3072"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "expected 2 integer labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "labels outside 0..9"),
    ],
)
def test_malformed_test_batch(cifar10_root, content, reason):
    path = cifar10_root / "cifar-10-batches-py" / "test_batch"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        dump(path, content)
    assert reason in one_line_error("cifar10", cifar10_root)
