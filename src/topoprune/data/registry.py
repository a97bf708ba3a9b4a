"""Datasets by name: :func:`load_dataset` and :func:`list_datasets`."""

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from topoprune.data.bundled import load_digits, load_mnist5k
from topoprune.data.cifar import load_cifar10, load_cifar100
from topoprune.data.imagefolder import load_imagefolder
from topoprune.data.splits import DatasetSplits, LoadedData, build_splits
from topoprune.data.svhn import load_svhn
from topoprune.data.synthetic import load_synthetic
from topoprune.errors import TopopruneError

LOADERS: dict[str, Callable[..., LoadedData]] = {
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "digits": load_digits,
    "imagefolder": load_imagefolder,
    "mnist5k": load_mnist5k,
    "svhn": load_svhn,
    "synthetic": load_synthetic,
}
"""Loader of each dataset: ``loader(root, **options) -> LoadedData``; options are keyword-only."""


def list_datasets() -> list[str]:
    """Names :func:`load_dataset` accepts, sorted.

    >>> list_datasets()
    ['cifar10', 'cifar100', 'digits', 'imagefolder', 'mnist5k', 'svhn', 'synthetic']
    """
    return sorted(LOADERS)


def dataset_options(name: str) -> dict[str, Any]:
    """The options dataset ``name`` takes, with their defaults.

    >>> dataset_options("imagefolder")
    {'image_size': 224, 'crop_fraction': 0.875}
    """
    parameters = inspect.signature(_loader(name)).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    **options: Any,
) -> DatasetSplits:
    """Load dataset ``name`` and split it into train / val / test.

    ``root`` is the folder holding the files of ``cifar10``, ``cifar100``, ``svhn`` and
    ``imagefolder`` (nothing is ever downloaded); ``digits``, ``mnist5k`` and ``synthetic`` need
    none. The validation split is ``round(val_fraction · n)`` of the n training images, chosen by
    a permutation seeded with ``split_seed``; the test split is the official one, or for
    ``digits``, ``mnist5k`` and ``synthetic`` a fixed 20% carved before (see
    :mod:`topoprune.data.splits`). ``options`` go to the loader (see :func:`dataset_options`),
    e.g. ``image_size=160`` for ``imagefolder`` or ``num_classes=3`` for ``synthetic``.

    >>> splits = load_dataset("digits", split_seed=1)
    >>> len(splits.train), len(splits.val), len(splits.test), splits.image_size
    (1294, 144, 359, (8, 8))
    >>> x, y = splits.train[0]
    >>> tuple(x.shape), x.dtype
    ((1, 8, 8), torch.float32)
    """
    loader = _loader(name)
    allowed = dataset_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) or "no options"
        raise TopopruneError(f"{name}: unknown option {unknown[0]!r}; it takes {takes}")
    loaded = loader(None if root is None else Path(root), **options)
    return build_splits(name, loaded, split_seed, val_fraction)


def _loader(name: str) -> Callable[..., LoadedData]:
    if name not in LOADERS:
        raise TopopruneError(
            f"unknown dataset {name!r}; choose one of {', '.join(list_datasets())}"
        )
    return LOADERS[name]
