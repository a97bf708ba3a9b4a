"""Turning masks into speed: compact grouped convs for block masks, chosen per layer by measuring.

>>> from topoprune.compact import realize, CompactConv2d, find_block_structure
"""

from topoprune.compact.autotune import KINDS, LayerChoice, RealizeReport, realize
from topoprune.compact.compact_conv import CompactConv2d
from topoprune.compact.kernel import kernel_available
from topoprune.compact.masked import folded_conv, is_masked_conv
from topoprune.compact.pool import BlockMaxPool2d
from topoprune.compact.remove_empty import (
    EmptyChannelReport,
    LayerChannels,
    empty_channels,
    remove_empty_channels,
)
from topoprune.compact.structure import BlockStructure, find_block_structure

__all__ = [
    "KINDS",
    "BlockMaxPool2d",
    "BlockStructure",
    "CompactConv2d",
    "EmptyChannelReport",
    "LayerChannels",
    "LayerChoice",
    "RealizeReport",
    "empty_channels",
    "find_block_structure",
    "folded_conv",
    "is_masked_conv",
    "kernel_available",
    "realize",
    "remove_empty_channels",
]
