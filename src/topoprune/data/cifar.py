"""CIFAR-10 and CIFAR-100 from their "python version" pickles in a local folder (never downloaded).

Each pickle is a dict with ``b"data"`` (uint8 N×3072: 1,024 red, then green, then blue values of
a 32×32 image, row by row) and a list of labels (``b"labels"`` for CIFAR-10, ``b"fine_labels"``
for CIFAR-100). Unpickling runs code stored in the file: point ``root`` only at files you trust.
"""

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from topoprune.data.checks import layout_error, require_root
from topoprune.data.memory import InMemoryImages
from topoprune.data.splits import LoadedData
from topoprune.errors import TopopruneError


@dataclass(frozen=True)
class CifarFormat:
    """Where one CIFAR variant keeps its pickles and what they hold."""

    name: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes
    num_classes: int

    @property
    def layout(self) -> str:
        """The expected layout, as error messages print it."""
        train = self.train_files[0] if len(self.train_files) == 1 else "data_batch_1..5"
        return (
            f"ROOT/{self.folder}/{train} and {self.test_file} "
            f"(python pickles with b'data' and b'{self.label_key.decode()}')"
        )


CIFAR10 = CifarFormat(
    name="cifar10",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch",
    label_key=b"labels",
    num_classes=10,
)

CIFAR100 = CifarFormat(
    name="cifar100",
    folder="cifar-100-python",
    train_files=("train",),
    test_file="test",
    label_key=b"fine_labels",
    num_classes=100,
)


def load_cifar10(root: Path | None) -> LoadedData:
    """CIFAR-10 from ``root/cifar-10-batches-py/`` (or ``root`` being that folder).

    Train: the five ``data_batch_*`` files in order (50,000 images); test: ``test_batch``
    (10,000). Images are uint8 N×3×32×32.
    """
    return load_cifar(CIFAR10, root)


def load_cifar100(root: Path | None) -> LoadedData:
    """CIFAR-100 (fine labels) from ``root/cifar-100-python/`` (or ``root`` being that folder).

    Train: ``train`` (50,000 images); test: ``test`` (10,000). Images are uint8 N×3×32×32.
    """
    return load_cifar(CIFAR100, root)


def load_cifar(fmt: CifarFormat, root: Path | None) -> LoadedData:
    """Read the training and test pickles of one CIFAR variant."""
    folder = require_root(fmt.name, root, fmt.layout)
    if (folder / fmt.folder).is_dir():
        folder = folder / fmt.folder
    train_parts = [read_pickle(fmt, folder / name) for name in fmt.train_files]
    train = InMemoryImages(
        torch.cat([images for images, _ in train_parts]),
        torch.cat([labels for _, labels in train_parts]),
    )
    test = InMemoryImages(*read_pickle(fmt, folder / fmt.test_file))
    return LoadedData(train, test, fmt.num_classes)


def read_pickle(fmt: CifarFormat, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One pickle as (uint8 N×3×32×32 images, int64 N labels), checked against ``fmt``."""

    def malformed(reason: str) -> TopopruneError:
        return layout_error(fmt.name, fmt.layout, path.parent, f"{path.name}: {reason}")

    if not path.is_file():
        raise malformed("missing")
    try:
        with path.open("rb") as file:
            content = pickle.load(file, encoding="bytes")
    except Exception as error:  # any failure to unpickle means the file is not a CIFAR pickle
        raise malformed(f"not a python pickle ({error})") from error
    if not isinstance(content, dict) or b"data" not in content or fmt.label_key not in content:
        raise malformed(f"not a dict with b'data' and b'{fmt.label_key.decode()}'")
    data = np.asarray(content[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise malformed(f"b'data' is {data.dtype} {data.shape}, not uint8 N×3072")
    labels = np.asarray(content[fmt.label_key])
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise malformed(
            f"expected {data.shape[0]} integer labels, got {labels.dtype} {labels.shape}"
        )
    if labels.size and not 0 <= labels.min() <= labels.max() < fmt.num_classes:
        raise malformed(f"labels outside 0..{fmt.num_classes - 1}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels.astype(np.int64))
