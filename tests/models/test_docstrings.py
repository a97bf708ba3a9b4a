import doctest
from importlib import import_module

import pytest

MODULES = ["__init__", "registry", "widths", "resnet", "resnet_cifar", "mobilenetv2"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = import_module("topoprune.models" + ("" if name == "__init__" else f".{name}"))
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
