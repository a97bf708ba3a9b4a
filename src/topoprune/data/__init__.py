"""Datasets and tensor transforms.

>>> from topoprune.data import load_dataset
>>> splits = load_dataset("synthetic", num_classes=3, image_size=8, size=60)
>>> len(splits.train) + len(splits.val) + len(splits.test), splits.in_channels
(60, 3)
"""

from topoprune.data.registry import dataset_options, list_datasets, load_dataset
from topoprune.data.splits import DatasetSplits

__all__ = ["DatasetSplits", "dataset_options", "list_datasets", "load_dataset"]
