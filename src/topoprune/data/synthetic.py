"""A seeded, learnable random dataset for tests and smoke runs.

Each class has a random prototype image (uniform in [0, 1]); an item is its class's prototype
plus Gaussian noise of standard deviation ``noise``, clipped to [0, 1]. Classes are balanced
(sizes differ by at most one). The same ``seed`` gives the same images and labels.
"""

from pathlib import Path

import torch

from topoprune.data import checks
from topoprune.data.memory import InMemoryImages
from topoprune.data.splits import LoadedData
from topoprune.errors import TopopruneError


def load_synthetic(
    root: Path | None = None,
    *,
    num_classes: int = 10,
    image_size: int | tuple[int, int] = 32,
    in_channels: int = 3,
    size: int = 256,
    noise: float = 0.5,
    seed: int = 0,
) -> LoadedData:
    """``size`` float32 images ``in_channels × H × W`` in ``num_classes`` classes; ``root`` ignored.

    >>> loaded = load_synthetic(num_classes=3, image_size=(4, 5), in_channels=2, size=7)
    >>> tuple(loaded.train.images.shape), sorted(loaded.train.labels.bincount().tolist())
    ((7, 2, 4, 5), [2, 2, 3])
    """
    height, width = checks.image_size(image_size)
    checks.positive_int(num_classes, "num_classes")
    checks.positive_int(in_channels, "in_channels")
    checks.positive_int(size, "size")
    if not isinstance(noise, int | float) or noise < 0:
        raise TopopruneError(f"noise must be a non-negative number; got {noise!r}")
    checks.non_negative_int(seed, "seed")
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, in_channels, height, width, generator=generator)
    labels = (torch.arange(size) % num_classes)[torch.randperm(size, generator=generator)]
    spread = noise * torch.randn(size, in_channels, height, width, generator=generator)
    images = (prototypes[labels] + spread).clamp_(0.0, 1.0)
    return LoadedData(InMemoryImages(images, labels), test=None, num_classes=num_classes)
