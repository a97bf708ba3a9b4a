"""Turning masks into speed: compact grouped convs for block masks, chosen per layer by measuring.

>>> from topoprune.realize import realize, CompactConv2d, find_block_structure
"""

from topoprune.realize.autotune import KINDS, LayerChoice, RealizeReport, realize
from topoprune.realize.compact import CompactConv2d
from topoprune.realize.kernel import kernel_available
from topoprune.realize.masked import folded_conv, is_masked_conv
from topoprune.realize.pool import BlockMaxPool2d
from topoprune.realize.structure import BlockStructure, find_block_structure

__all__ = [
    "KINDS",
    "BlockMaxPool2d",
    "BlockStructure",
    "CompactConv2d",
    "LayerChoice",
    "RealizeReport",
    "find_block_structure",
    "folded_conv",
    "is_masked_conv",
    "kernel_available",
    "realize",
]
