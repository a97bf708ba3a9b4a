"""Train / validation / test splits: what every loader returns, and the seeded carving of splits.

A loader reads the official sets into a :class:`LoadedData`; :func:`build_splits` then carves the
validation split out of the training set with ``split_seed`` and, for datasets without an official
test split, first carves a fixed test split (seed :data:`TEST_SPLIT_SEED`, the same for every
``split_seed``, so runs that vary ``split_seed`` are still measured on the same test images).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from topoprune.data.checks import non_negative_int
from topoprune.data.memory import InMemoryImages, channel_stats
from topoprune.errors import TopopruneError

TEST_FRACTION = 0.2
"""Share of a dataset carved off as its test split when it has no official one."""

TEST_SPLIT_SEED = 0
"""Seed of the carved test split; fixed so that ``split_seed`` only moves the validation split."""


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset ready for training: three splits and what a model and a normaliser need to know.

    Each split yields ``(x, y)`` with ``x`` a float32 tensor ``in_channels × H × W`` in [0, 1]
    (not yet normalised; see :mod:`topoprune.data.transforms`) and ``y`` an int in
    ``0 .. num_classes - 1``. ``mean`` and ``std`` hold one float per channel.
    """

    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str


@dataclass(frozen=True)
class LoadedData:
    """What a loader read: the official training set and test set, before any carving.

    ``test=None`` means the dataset has no official test split (one is carved). ``stats=None``
    means mean and std are computed on the final training split (``train`` must then be an
    :class:`InMemoryImages`); otherwise ``stats`` is ``(mean, std)``.
    """

    train: Dataset
    test: Dataset | None
    num_classes: int
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None


def carve(size: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(size)`` into ``(kept, carved)`` with ``round(fraction · size)`` carved.

    The carved indices are the first ones of a permutation seeded with ``seed``; both parts are
    returned sorted (int64 tensors), so a carved split keeps the dataset's own order.

    >>> kept, carved = carve(10, 0.3, seed=0)
    >>> len(kept), len(carved), sorted(kept.tolist() + carved.tolist()) == list(range(10))
    (7, 3, True)
    """
    order = torch.from_numpy(np.random.default_rng(seed).permutation(size))
    count = round(fraction * size)
    return order[count:].sort().values, order[:count].sort().values


def take(dataset: Dataset, indices: torch.Tensor) -> Dataset:
    """The items of ``dataset`` at ``indices``: a compact copy in memory, else a lazy Subset."""
    if isinstance(dataset, InMemoryImages):
        return dataset.subset(indices)
    return Subset(dataset, indices.tolist())


def build_splits(
    name: str, loaded: LoadedData, split_seed: int, val_fraction: float
) -> DatasetSplits:
    """Carve the test split (if needed) and the validation split, and gather the metadata."""
    non_negative_int(split_seed, "split_seed")
    if not isinstance(val_fraction, int | float) or not 0 <= val_fraction < 1:
        raise TopopruneError(f"val_fraction must be a number in [0, 1); got {val_fraction!r}")
    pool, test = loaded.train, loaded.test
    if test is None:
        pool_indices, test_indices = carve(len(pool), TEST_FRACTION, TEST_SPLIT_SEED)
        pool, test = take(pool, pool_indices), take(pool, test_indices)
    train_indices, val_indices = carve(len(pool), val_fraction, split_seed)
    if len(train_indices) == 0:
        raise TopopruneError(
            f"{name}: {len(pool)} training images leave none to train on after carving "
            f"val_fraction={val_fraction}; use more images or a smaller val_fraction"
        )
    train, val = take(pool, train_indices), take(pool, val_indices)
    mean, std = loaded.stats or channel_stats(train.images)
    channels, height, width = train[0][0].shape
    return DatasetSplits(
        train=train,
        val=val,
        test=test,
        num_classes=loaded.num_classes,
        in_channels=channels,
        image_size=(height, width),
        mean=mean,
        std=std,
        name=name,
    )
