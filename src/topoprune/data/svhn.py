"""SVHN (cropped digits, "format 2") from its MATLAB files in a local folder (never downloaded).

Each ``.mat`` file holds ``X``, uint8 32×32×3×N (height, width, channel, image), and ``y``, N×1
labels in 1..10 where 10 stands for the digit 0; labels are mapped to 0..9 (10 → 0).
"""

from pathlib import Path

import numpy as np
import scipy.io
import torch

from topoprune.data.checks import layout_error, require_root
from topoprune.data.memory import InMemoryImages
from topoprune.data.splits import LoadedData
from topoprune.errors import TopopruneError

SVHN_LAYOUT = "ROOT/train_32x32.mat and ROOT/test_32x32.mat (SVHN format 2, X 32×32×3×N and y N×1)"


def load_svhn(root: Path | None) -> LoadedData:
    """SVHN train (73,257 images) and test (26,032) as uint8 N×3×32×32 with labels 0..9.

    The ``extra`` set is not read.
    """
    folder = require_root("svhn", root, SVHN_LAYOUT)
    train = InMemoryImages(*read_mat(folder / "train_32x32.mat"))
    test = InMemoryImages(*read_mat(folder / "test_32x32.mat"))
    return LoadedData(train, test, num_classes=10)


def read_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One SVHN ``.mat`` file as (uint8 N×3×32×32 images, int64 N labels in 0..9)."""

    def malformed(reason: str) -> TopopruneError:
        return layout_error("svhn", SVHN_LAYOUT, path.parent, f"{path.name}: {reason}")

    if not path.is_file():
        raise malformed("missing")
    try:
        content = scipy.io.loadmat(path)
    except Exception as error:  # any failure to parse means the file is not a MATLAB file
        raise malformed(f"not a MATLAB file ({error})") from error
    if "X" not in content or "y" not in content:
        raise malformed("no 'X' and 'y' variables")
    pixels, digits = np.asarray(content["X"]), np.asarray(content["y"]).reshape(-1)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[:3] != (32, 32, 3):
        raise malformed(f"X is {pixels.dtype} {pixels.shape}, not uint8 32×32×3×N")
    if digits.shape != (pixels.shape[3],) or not np.all(np.isin(digits, np.arange(1, 11))):
        raise malformed(f"y must hold {pixels.shape[3]} labels in 1..10")
    images = torch.from_numpy(np.ascontiguousarray(pixels.transpose(3, 2, 0, 1)))
    return images, torch.from_numpy(digits.astype(np.int64) % 10)
