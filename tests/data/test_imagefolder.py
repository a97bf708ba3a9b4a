import numpy as np
import pytest
import torch
from PIL import Image

from topoprune.data import load_dataset
from topoprune.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD, decode_image
from topoprune.errors import TopopruneError

COLOURS = {"cat": (200, 10, 30), "dog": (5, 120, 250)}


def save_solid(path, colour, size=(12, 10), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


@pytest.fixture
def folder_root(tmp_path):
    for name, colour in COLOURS.items():
        for index in range(3):
            save_solid(tmp_path / "train" / name / f"{index}.png", colour)
    save_solid(tmp_path / "train" / "cat" / "extra.JPG", COLOURS["cat"])
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    save_solid(tmp_path / "val" / "dog" / "a.png", COLOURS["dog"])
    save_solid(tmp_path / "val" / "dog" / "b.jpeg", COLOURS["dog"])
    return tmp_path


def test_loads_classes_and_splits(folder_root):
    splits = load_dataset("imagefolder", root=folder_root, image_size=8, val_fraction=0.25)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5, 2, 2)
    assert (splits.num_classes, splits.in_channels, splits.image_size) == (2, 3, (8, 8))
    assert (splits.mean, splits.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert splits.test.classes == ["cat", "dog"]
    assert [label for _, label in splits.test.samples] == [1, 1]
    assert repr(splits.test) == "ImageFolderDataset(2 images 3×8×8, 2 classes)"
    for part in (splits.train, splits.val, splits.test):
        for index in range(len(part)):
            x, y = part[index]
            assert x.shape == (3, 8, 8) and x.dtype == torch.float32
            colour = COLOURS[["cat", "dog"][y]]
            expected = torch.tensor(colour, dtype=torch.float32).div(255).view(3, 1, 1)
            assert torch.allclose(x, expected.expand(3, 8, 8), atol=4 / 255)  # JPEG is lossy


def test_train_files_sorted_by_class_then_name(folder_root):
    splits = load_dataset("imagefolder", root=folder_root, image_size=8, val_fraction=0.0)
    names = [(path.parent.name, path.name) for path, _ in splits.train.dataset.samples]
    assert names == [
        ("cat", "0.png"),
        ("cat", "1.png"),
        ("cat", "2.png"),
        ("cat", "extra.JPG"),
        ("dog", "0.png"),
        ("dog", "1.png"),
        ("dog", "2.png"),
    ]


def test_centre_crop_without_scaling(tmp_path):
    columns = np.tile(np.arange(16, dtype=np.uint8) * 10, (8, 1))  # 8 high, 16 wide
    pixels = np.stack([columns, columns, columns], axis=-1)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    x = decode_image(tmp_path / "wide.png", (8, 8), crop_fraction=1.0)
    assert torch.equal(x[0, 0] * 255, torch.arange(4, 12, dtype=torch.float32) * 10)


def test_scaling_keeps_aspect_ratio_then_crops(tmp_path):
    save_solid(tmp_path / "tall.png", (0, 0, 0), size=(40, 100))
    x = decode_image(tmp_path / "tall.png", (6, 7), crop_fraction=0.875)
    assert x.shape == (3, 6, 7)


def test_grayscale_becomes_rgb(tmp_path):
    save_solid(tmp_path / "grey.png", 128, mode="L")
    x = decode_image(tmp_path / "grey.png", (4, 4))
    assert torch.equal(x, torch.full((3, 4, 4), 128 / 255))


def test_decoding_is_lazy(folder_root):
    (folder_root / "val" / "dog" / "b.jpeg").write_bytes(b"broken\nimage")
    splits = load_dataset("imagefolder", root=folder_root, image_size=8)
    splits.test[0]
    with pytest.raises(TopopruneError) as caught:
        splits.test[1]
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"imagefolder: cannot decode {folder_root / 'val' / 'dog' / 'b.jpeg'}"
    )


def error_for(root, **options):
    with pytest.raises(TopopruneError) as caught:
        load_dataset("imagefolder", root=root, **options)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_missing_val(folder_root):
    for path in (folder_root / "val" / "dog").iterdir():
        path.unlink()
    (folder_root / "val" / "dog").rmdir()
    (folder_root / "val").rmdir()
    assert error_for(folder_root) == (
        "imagefolder: expected ROOT/train/<class>/*.png|jpg and ROOT/val/<class>/*.png|jpg; "
        f"got {folder_root} (no val/ folder)"
    )


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda root: (root / "val" / "bird").mkdir(), "val/bird is not a class folder in train/"),
        (lambda root: (root / "train" / "empty").mkdir(), "train/empty holds no .png/.jpg/.jpeg"),
    ],
)
def test_malformed_folders(folder_root, make, reason):
    make(folder_root)
    assert reason in error_for(folder_root)


def test_no_classes(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    assert "(train/ has no class folders)" in error_for(tmp_path)


def test_empty_val(folder_root):
    for path in (folder_root / "val" / "dog").iterdir():
        path.unlink()
    (folder_root / "val" / "dog").rmdir()
    assert "(val/ holds no images)" in error_for(folder_root)


def test_bad_options(folder_root):
    assert "image_size must be" in error_for(folder_root, image_size=0)
    assert "crop_fraction must be" in error_for(folder_root, crop_fraction=1.5)
    assert "pass --root" in error_for(None)
