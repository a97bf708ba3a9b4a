"""An image dataset held in memory as one tensor, and per-channel statistics over it."""

import torch
from torch.utils.data import Dataset

from topoprune.errors import TopopruneError


class InMemoryImages(Dataset):
    """Images and labels held as two tensors; items come out as ``(float32 C×H×W, int)``.

    ``images`` is N×C×H×W, either ``uint8`` (0..255, kept compact: CIFAR-10's 60,000 images take
    184 MB instead of 737 MB) or ``float32`` already in [0, 1]; items are always float32 in [0, 1].
    ``labels`` is an int64 tensor of length N.

    >>> white = torch.full((2, 1, 3, 3), 255, dtype=torch.uint8)
    >>> data = InMemoryImages(white, torch.tensor([0, 1]))
    >>> x, y = data[1]
    >>> tuple(x.shape), x.dtype, x.max().item(), y
    ((1, 3, 3), torch.float32, 1.0, 1)
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dim() != 4 or images.dtype not in (torch.uint8, torch.float32):
            raise TopopruneError(
                f"images must be an N×C×H×W uint8 or float32 tensor; got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if labels.shape != (images.shape[0],):
            raise TopopruneError(
                f"labels must have shape ({images.shape[0]},) to match the images; "
                f"got {tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels.to(torch.int64)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        shape = "×".join(map(str, self.images.shape[1:]))
        return f"InMemoryImages({len(self)} images {shape} {self.images.dtype})"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return to_unit_float(self.images[index]), int(self.labels[index])

    def subset(self, indices: torch.Tensor) -> "InMemoryImages":
        """A new dataset holding copies of the items at ``indices`` (int64, length M), in order."""
        return InMemoryImages(self.images[indices], self.labels[indices])


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """Images of any shape as float32 in [0, 1]: ``uint8`` is divided by 255, float32 kept."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    return images


def channel_stats(
    images: torch.Tensor, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of N×C×H×W images in [0, 1] units.

    ``uint8`` images are read as value / 255. Sums run in float64 over chunks of ``chunk`` images,
    so memory stays small. A channel with no spread (std below 1e-6) gets std 1.0, so that
    normalising by it is a plain shift.

    >>> images = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    >>> channel_stats(images)
    ((0.5,), (0.5,))
    """
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        block = to_unit_float(images[start : start + chunk]).to(torch.float64)
        total += block.sum(dim=(0, 2, 3))
        total_sq += block.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0.0).sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return tuple(mean.tolist()), tuple(std.tolist())
