"""Measuring a model: mask- and group-aware parameter/MAC counts, and latency.

MACs are multiply-accumulates; FLOPs are defined as 2 × MACs. The counting conventions (bias not
counted, BatchNorm one MAC per element, pooling one op per window element) are listed in
:mod:`topoprune.measure.rules`.

Example
-------
>>> import torch
>>> from topoprune.measure import count
>>> count(torch.nn.Linear(10, 5), (10,)).macs
50
"""

from topoprune.measure.counter import count
from topoprune.measure.counts import Counts, LayerCount
from topoprune.measure.latency import LatencyStats, latencies, latency
from topoprune.measure.report import format_counts

__all__ = ["Counts", "LatencyStats", "LayerCount", "count", "format_counts", "latencies", "latency"]
