"""The built-in methods: importing this module registers each of them."""

from topoprune.pruning import baselines, exp, grasp, l1, magnitude, rgp, smallworld, snip, synflow  # noqa: F401
from topoprune.pruning.graphpruning import method as graphpruning  # noqa: F401
