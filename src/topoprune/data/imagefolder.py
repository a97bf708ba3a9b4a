"""Images in class folders (the ImageNet layout), decoded lazily one item at a time.

Layout: ``ROOT/train/<class>/*.png|jpg|jpeg`` and ``ROOT/val/<class>/...``. Classes are the
folder names under ``train/``, sorted, labelled 0, 1, ...; ``val/`` (the test split) may hold any
subset of them. Each item is decoded with Pillow, made RGB, scaled (keeping its aspect ratio) so
it covers ``H / crop_fraction × W / crop_fraction`` and centre-cropped to ``H × W``: with the
defaults (224, 0.875) that is the usual "resize to 256, centre crop 224". Only file paths are held
in memory. Mean and std are the usual ImageNet ones (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`).
"""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from topoprune.data import checks
from topoprune.data.checks import layout_error, one_line, require_root
from topoprune.data.splits import LoadedData
from topoprune.errors import TopopruneError

IMAGEFOLDER_LAYOUT = "ROOT/train/<class>/*.png|jpg and ROOT/val/<class>/*.png|jpg"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFolderDataset(Dataset):
    """Labelled image files decoded on access to float32 3×H×W tensors in [0, 1].

    ``samples`` lists ``(path, label)``; ``classes[label]`` is the class folder's name.
    """

    def __init__(
        self,
        samples: list[tuple[Path, int]],
        classes: list[str],
        size: tuple[int, int],
        crop_fraction: float,
    ) -> None:
        self.samples = samples
        self.classes = classes
        self.size = size
        self.crop_fraction = crop_fraction

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        shape = "×".join(map(str, (3, *self.size)))
        return f"ImageFolderDataset({len(self)} images {shape}, {len(self.classes)} classes)"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return decode_image(path, self.size, self.crop_fraction), label


def decode_image(path: Path, size: tuple[int, int], crop_fraction: float = 0.875) -> torch.Tensor:
    """Decode an image file to a float32 3×H×W tensor in [0, 1], ``(H, W) = size``.

    The image is scaled (aspect ratio kept, bilinear) so that it covers
    ``H / crop_fraction × W / crop_fraction``, then its centre ``H × W`` is cut out.
    """
    from PIL import Image

    height, width = size
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError) as error:  # UnidentifiedImageError is an OSError
        raise TopopruneError(
            f"imagefolder: cannot decode {path} ({one_line(error)}); remove or replace the file"
        ) from error
    scale = max(height / crop_fraction / rgb.height, width / crop_fraction / rgb.width)
    scaled_w = max(width, round(rgb.width * scale))
    scaled_h = max(height, round(rgb.height * scale))
    rgb = rgb.resize((scaled_w, scaled_h), Image.Resampling.BILINEAR)
    left, top = (scaled_w - width) // 2, (scaled_h - height) // 2
    pixels = np.asarray(rgb.crop((left, top, left + width, top + height)), dtype=np.uint8)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)


def load_imagefolder(
    root: Path | None, *, image_size: int | tuple[int, int] = 224, crop_fraction: float = 0.875
) -> LoadedData:
    """Index ``root/train`` (training set) and ``root/val`` (test split); decode nothing yet.

    ``image_size``: ``S`` or ``(H, W)`` of the items; ``crop_fraction`` in (0, 1]: the share of
    the scaled image kept by the centre crop.
    """
    size = checks.image_size(image_size)
    if not isinstance(crop_fraction, int | float) or not 0 < crop_fraction <= 1:
        raise TopopruneError(f"crop_fraction must be a number in (0, 1]; got {crop_fraction!r}")
    try:
        import PIL.Image  # noqa: F401  (only to fail early when Pillow is missing)
    except ImportError as error:
        raise TopopruneError(
            "imagefolder: decoding images needs Pillow; pip install pillow"
        ) from error
    folder = require_root("imagefolder", root, IMAGEFOLDER_LAYOUT)
    classes = class_folders(folder, "train")
    if not classes:
        raise layout_error("imagefolder", IMAGEFOLDER_LAYOUT, folder, "train/ has no class folders")
    labels = {name: label for label, name in enumerate(classes)}
    unknown = sorted(set(class_folders(folder, "val")) - set(labels))
    if unknown:
        reason = f"val/{unknown[0]} is not a class folder in train/"
        raise layout_error("imagefolder", IMAGEFOLDER_LAYOUT, folder, reason)
    datasets = [
        ImageFolderDataset(labelled_files(folder, split, labels), classes, size, crop_fraction)
        for split in ("train", "val")
    ]
    return LoadedData(*datasets, num_classes=len(classes), stats=(IMAGENET_MEAN, IMAGENET_STD))


def class_folders(folder: Path, split: str) -> list[str]:
    """Sorted names of the class folders under ``folder/split``; raises if that is no folder."""
    split_dir = folder / split
    if not split_dir.is_dir():
        raise layout_error("imagefolder", IMAGEFOLDER_LAYOUT, folder, f"no {split}/ folder")
    return sorted(entry.name for entry in split_dir.iterdir() if entry.is_dir())


def labelled_files(folder: Path, split: str, labels: dict[str, int]) -> list[tuple[Path, int]]:
    """``(path, label)`` of every image under ``folder/split/<class>/``, sorted by class then name.

    Raises if a class folder holds no image or the split holds none at all.
    """
    samples = []
    for name in class_folders(folder, split):
        files = sorted(
            path
            for path in (folder / split / name).iterdir()
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            reason = f"{split}/{name} holds no .png/.jpg/.jpeg images"
            raise layout_error("imagefolder", IMAGEFOLDER_LAYOUT, folder, reason)
        samples.extend((path, labels[name]) for path in files)
    if not samples:
        raise layout_error("imagefolder", IMAGEFOLDER_LAYOUT, folder, f"{split}/ holds no images")
    return samples
