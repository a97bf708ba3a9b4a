"""Augmentation and normalisation of whole batches of images held as tensors, on any device.

Every function takes a float batch ``B×C×H×W`` (values in [0, 1] before normalisation) and
returns a new batch of the same shape, dtype and device. Random choices are made per image and
drawn from ``generator`` (on its own device; a CPU generator works for a GPU batch too), so a
generator seeded the same gives the same output.

>>> import torch
>>> batch = torch.rand(4, 3, 32, 32)
>>> crop_flip = BatchTransform(mean=(0.5,) * 3, std=(0.25,) * 3, padding=4, flip=True)
>>> out = crop_flip(batch, torch.Generator().manual_seed(0))
>>> out.shape == batch.shape
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from topoprune.data.checks import non_negative_int
from topoprune.data.splits import DatasetSplits
from topoprune.errors import TopopruneError

CROP_DATASETS = frozenset({"cifar10", "cifar100", "svhn", "imagefolder"})
"""Datasets trained with random crops, padded by 1/8 of the image side (4 pixels at 32×32)."""

FLIP_DATASETS = frozenset({"cifar10", "cifar100", "imagefolder"})
"""Datasets trained with random horizontal flips (not digits: a mirrored digit is another sign)."""


def random_crop(
    batch: torch.Tensor,
    padding: int,
    generator: torch.Generator | None = None,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Zero-pad every side by ``padding``, then cut a random H×W window out of each image.

    Each image's window offset ``(dy, dx)`` is uniform in ``0 .. 2·padding`` (or given:
    ``offsets`` of shape (2, B)); ``padding=0`` returns ``batch`` itself.

    >>> batch = torch.arange(4.0).view(1, 1, 2, 2)
    >>> random_crop(batch, 1, torch.Generator().manual_seed(3)).shape
    torch.Size([1, 1, 2, 2])
    """
    _check_batch(batch)
    non_negative_int(padding, "padding")
    if padding == 0:
        return batch
    size, channels, height, width = batch.shape
    if offsets is None:
        offsets = crop_offsets(size, padding, generator)
    offsets = offsets.to(batch.device)
    padded = F.pad(batch, (padding, padding, padding, padding))
    rows = offsets[0, :, None] + torch.arange(height, device=batch.device)  # B×H
    cols = offsets[1, :, None] + torch.arange(width, device=batch.device)  # B×W
    images = torch.arange(size, device=batch.device)[:, None, None, None]
    planes = torch.arange(channels, device=batch.device)[None, :, None, None]
    return padded[images, planes, rows[:, None, :, None], cols[:, None, None, :]]


def crop_offsets(count: int, padding: int, generator: torch.Generator | None) -> torch.Tensor:
    """Window offsets of :func:`random_crop` for ``count`` images, shape (2, count)."""
    draw_on = _device_of(generator)
    return torch.randint(2 * padding + 1, (2, count), generator=generator, device=draw_on)


def flip_draws(count: int, generator: torch.Generator | None, p: float = 0.5) -> torch.Tensor:
    """Which of ``count`` images :func:`random_hflip` mirrors, bool (count,)."""
    return torch.rand(count, generator=generator, device=_device_of(generator)) < p


def random_hflip(
    batch: torch.Tensor,
    generator: torch.Generator | None = None,
    p: float = 0.5,
    flips: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mirror each image left to right with probability ``p`` (or where ``flips``, bool (B,)).

    >>> batch = torch.tensor([[[[1.0, 2.0]]]])
    >>> random_hflip(batch, p=1.0)
    tensor([[[[2., 1.]]]])
    """
    _check_batch(batch)
    if flips is None:
        flips = flip_draws(batch.shape[0], generator, p)
    flips = flips.to(batch.device)
    return torch.where(flips[:, None, None, None], batch.flip(-1), batch)


def normalize_batch(
    batch: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """``(batch - mean) / std`` with one mean and std per channel.

    >>> normalize_batch(torch.ones(1, 2, 1, 1), (0.5, 1.0), (0.25, 1.0)).flatten().tolist()
    [2.0, 0.0]
    """
    _check_batch(batch)
    if not len(mean) == len(std) == batch.shape[1]:
        raise TopopruneError(
            f"normalisation has {len(mean)} means and {len(std)} stds for a batch with "
            f"{batch.shape[1]} channels; use the mean and std of the same dataset"
        )
    shape = (1, -1, 1, 1)
    mean_t = torch.tensor(mean, dtype=batch.dtype, device=batch.device).view(shape)
    std_t = torch.tensor(std, dtype=batch.dtype, device=batch.device).view(shape)
    return (batch - mean_t) / std_t


@dataclass(frozen=True)
class BatchTransform:
    """Random crop (if ``padding``), random flip (if ``flip``), then normalisation.

    Call it as ``transform(batch, generator=None) -> batch``, shapes B×C×H×W in and out.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    padding: int = 0
    flip: bool = False

    def __call__(
        self, batch: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.apply(batch, self.draw(batch.shape[0], generator))

    def draw(self, count: int, generator: torch.Generator | None = None) -> AugmentDraws:
        """The random choices for ``count`` samples, drawn in one go (crop offsets, flips)."""
        offsets = crop_offsets(count, self.padding, generator) if self.padding else None
        return AugmentDraws(offsets, flip_draws(count, generator) if self.flip else None)

    def apply(self, batch: torch.Tensor, draws: AugmentDraws) -> torch.Tensor:
        """Crop, flip and normalise ``batch`` (B×C×H×W) with the B samples' ``draws``."""
        if draws.offsets is not None:
            batch = random_crop(batch, self.padding, offsets=draws.offsets)
        if draws.flips is not None:
            batch = random_hflip(batch, flips=draws.flips)
        return normalize_batch(batch, self.mean, self.std)


@dataclass(frozen=True)
class AugmentDraws:
    """Random choices of :class:`BatchTransform` for a set of samples.

    offsets: (2, N) crop offsets or None; flips: bool (N,) or None. ``draws.take(index)``
    selects the samples of a batch (index: int64 (B,) positions into the N).
    """

    offsets: torch.Tensor | None
    flips: torch.Tensor | None

    def take(self, index: torch.Tensor) -> AugmentDraws:
        return AugmentDraws(
            None if self.offsets is None else self.offsets[:, index],
            None if self.flips is None else self.flips[index],
        )


def train_augment(splits: DatasetSplits) -> BatchTransform:
    """The training-time transform suited to ``splits.name``.

    cifar10, cifar100, imagefolder: crop (padding = min(H, W) // 8) and flip; svhn: crop only;
    digits, mnist5k, synthetic: normalisation only. Always ends with ``normalize(splits)``.
    """
    padding = min(splits.image_size) // 8 if splits.name in CROP_DATASETS else 0
    return BatchTransform(
        splits.mean, splits.std, padding=padding, flip=splits.name in FLIP_DATASETS
    )


def normalize(splits: DatasetSplits) -> BatchTransform:
    """The evaluation-time transform: normalisation with the dataset's mean and std only."""
    return BatchTransform(splits.mean, splits.std)


def _device_of(generator: torch.Generator | None) -> torch.device:
    """Where random numbers are drawn: the generator's device, or the CPU's global generator."""
    return generator.device if generator is not None else torch.device("cpu")


def _check_batch(batch: torch.Tensor) -> None:
    if batch.dim() != 4:
        raise TopopruneError(
            f"expected a batch of images B×C×H×W; got shape {tuple(batch.shape)} "
            "(add a batch dimension with x.unsqueeze(0))"
        )
