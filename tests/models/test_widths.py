import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.errors import TopopruneError
from topoprune.models import create_model
from topoprune.models.widths import check_widths

DEFAULTS = [6, 16, 120, 84]


def test_none_gives_a_copy_of_the_defaults():
    widths = check_widths("lenet5", None, DEFAULTS, "[...]")
    assert widths == DEFAULTS and widths is not DEFAULTS


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=4, max_size=4))
def test_valid_lists_come_back_unchanged(widths):
    assert check_widths("lenet5", tuple(widths), DEFAULTS, "[...]") == widths


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 100), max_size=8).filter(lambda w: len(w) != 4))
def test_wrong_length_raises(widths):
    with pytest.raises(TopopruneError, match="lenet5 takes 4 widths"):
        check_widths("lenet5", widths, DEFAULTS, "[...]")


@pytest.mark.parametrize("bad", [0, -1, 2.5, 3.0, True, "8", None])
def test_non_positive_or_non_int_entry_raises(bad):
    with pytest.raises(TopopruneError, match="entry 2"):
        check_widths("lenet5", [6, 16, bad, 84], DEFAULTS, "[...]")


@pytest.mark.parametrize("bad", ["6,16,120,84", 6, {6: 1}])
def test_non_list_raises(bad):
    with pytest.raises(TopopruneError, match="must be a list of 4 ints"):
        check_widths("lenet5", bad, DEFAULTS, "[...]")


@pytest.mark.parametrize(
    ("name", "length"),
    [
        ("lenet5", 4),
        ("vgg11", 8),
        ("vgg16", 13),
        ("resnet20", 12),
        ("resnet56", 30),
        ("resnet110", 57),
        ("cresnet18", 12),
        ("resnet18", 12),
        ("resnet50", 37),
        ("mobilenetv2", 25),
    ],
)
def test_every_model_checks_its_width_count(name, length):
    with pytest.raises(TopopruneError, match=f"{name} takes {length} widths"):
        create_model(name, widths=[4] * (length + 1))
