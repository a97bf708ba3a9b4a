import pytest
from hypothesis import given
from hypothesis import strategies as st

from topoprune.data.checks import (
    image_size,
    layout_error,
    non_negative_int,
    one_line,
    positive_int,
    require_root,
)
from topoprune.errors import TopopruneError


@given(st.integers(1, 4096))
def test_image_size_square(side):
    assert image_size(side) == (side, side)


@given(st.integers(1, 4096), st.integers(1, 4096))
def test_image_size_pair(height, width):
    assert image_size((height, width)) == (height, width)
    assert image_size([height, width]) == (height, width)


@pytest.mark.parametrize("bad", [0, -3, (4,), (4, 0), (4, 4, 4), 3.5, "32", None, True, (2.0, 2)])
def test_image_size_rejects(bad):
    with pytest.raises(TopopruneError, match="image_size must be a positive int"):
        image_size(bad)


def test_int_checks():
    assert positive_int(3, "size") == 3
    assert non_negative_int(0, "seed") == 0
    for bad in (0, -1, 1.0, True):
        with pytest.raises(TopopruneError, match="^size must be a positive integer"):
            positive_int(bad, "size")
    for bad in (-1, 0.0, False, "1"):
        with pytest.raises(TopopruneError, match="^seed must be a non-negative integer"):
            non_negative_int(bad, "seed")


def test_one_line_collapses_whitespace():
    assert one_line("a\n  b\tc\r\n") == "a b c"


def test_layout_error_is_one_line():
    error = layout_error("svhn", "ROOT/x.mat", "/some\npath", "broken\nfile")
    assert isinstance(error, TopopruneError)
    assert str(error) == "svhn: expected ROOT/x.mat; got /some path (broken file)"


def test_require_root(tmp_path):
    assert require_root("cifar10", str(tmp_path), "LAYOUT") == tmp_path
    with pytest.raises(TopopruneError) as none_given:
        require_root("cifar10", None, "LAYOUT")
    assert str(none_given.value) == (
        "cifar10: no dataset root given; pass --root DIR where DIR holds LAYOUT"
    )
    missing = tmp_path / "absent"
    with pytest.raises(TopopruneError) as not_there:
        require_root("cifar10", missing, "LAYOUT")
    assert str(not_there.value) == f"cifar10: expected LAYOUT; got {missing} (no such folder)"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(TopopruneError, match="no such folder"):
        require_root("cifar10", a_file, "LAYOUT")
