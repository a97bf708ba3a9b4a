import doctest
from importlib import import_module

import pytest

MODULES = ["structure", "masked", "compact", "autotune", "timing"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(import_module(f"topoprune.realize.{name}"))
    assert result.attempted > 0 and result.failed == 0
