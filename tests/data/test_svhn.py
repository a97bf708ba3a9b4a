import numpy as np
import pytest
import scipy.io
import torch

from topoprune.data import load_dataset
from topoprune.errors import TopopruneError


def svhn_arrays(count, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
    digits = (np.arange(count) % 10 + 1).reshape(count, 1).astype(np.uint8)  # 1..10
    return pixels, digits


@pytest.fixture
def svhn_root(tmp_path):
    for name, count, seed in [("train", 20, 0), ("test", 10, 1)]:
        pixels, digits = svhn_arrays(count, seed)
        scipy.io.savemat(tmp_path / f"{name}_32x32.mat", {"X": pixels, "y": digits})
    return tmp_path


def test_svhn_layout_and_labels(svhn_root):
    splits = load_dataset("svhn", root=svhn_root, val_fraction=0.2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 4, 10)
    assert (splits.num_classes, splits.in_channels, splits.image_size) == (10, 3, (32, 32))
    pixels, digits = svhn_arrays(10, 1)
    labels = [splits.test[i][1] for i in range(10)]
    assert labels == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]  # the digit 0 is stored as 10
    x, _ = splits.test[9]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    expected = torch.from_numpy(pixels[:, :, :, 9].astype(np.float32) / 255).permute(2, 0, 1)
    assert torch.equal(x, expected)


def test_svhn_labels_as_float_column(svhn_root):
    pixels, digits = svhn_arrays(10, 1)
    scipy.io.savemat(svhn_root / "test_32x32.mat", {"X": pixels, "y": digits.astype(float)})
    splits = load_dataset("svhn", root=svhn_root)
    assert splits.test[9][1] == 0


def error_for(root):
    with pytest.raises(TopopruneError) as caught:
        load_dataset("svhn", root=root)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_missing_test_file(svhn_root):
    (svhn_root / "test_32x32.mat").unlink()
    assert error_for(svhn_root) == (
        "svhn: expected ROOT/train_32x32.mat and ROOT/test_32x32.mat (SVHN format 2, "
        f"X 32×32×3×N and y N×1); got {svhn_root} (test_32x32.mat: missing)"
    )


@pytest.mark.parametrize(
    "content, reason",
    [
        ({"X": np.zeros((32, 32, 3, 2), np.uint8)}, "no 'X' and 'y' variables"),
        ({"X": np.zeros((28, 28, 3, 2), np.uint8), "y": [[1], [2]]}, "not uint8 32×32×3×N"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[0], [2]]}, "2 labels in 1..10"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[1], [11]]}, "2 labels in 1..10"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[1]]}, "2 labels in 1..10"),
    ],
)
def test_malformed_mat(svhn_root, content, reason):
    scipy.io.savemat(svhn_root / "train_32x32.mat", content)
    message = error_for(svhn_root)
    assert "(train_32x32.mat: " in message and reason in message


def test_not_a_mat_file(svhn_root):
    (svhn_root / "train_32x32.mat").write_bytes(b"garbage\nbytes")
    assert "(train_32x32.mat: not a MATLAB file" in error_for(svhn_root)


def test_root_needed():
    assert "pass --root" in error_for(None)
