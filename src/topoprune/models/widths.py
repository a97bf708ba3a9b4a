"""Checking a user's width list against a model's width format."""

from collections.abc import Iterable, Mapping, Sequence
from operator import index

from topoprune.errors import TopopruneError


def check_widths(
    arch: str, widths: Iterable[int] | None, defaults: Sequence[int], layout: str
) -> list[int]:
    """Return ``widths`` (list, tuple, 1-D array) as a list of positive ints; None → ``defaults``.

    ``layout`` names what the entries mean (it goes into the error message).

    >>> check_widths("lenet5", [3, 8, 60, 42], [6, 16, 120, 84], "[conv1, conv2, fc1, fc2]")
    [3, 8, 60, 42]
    >>> check_widths("lenet5", None, [6, 16, 120, 84], "[conv1, conv2, fc1, fc2]")
    [6, 16, 120, 84]
    """
    if widths is None:
        return list(defaults)
    if isinstance(widths, (str, bytes, Mapping)) or not isinstance(widths, Iterable):
        raise TopopruneError(
            f"{arch} widths must be a list of {len(defaults)} ints {layout}, got {widths!r}"
        )
    widths = list(widths)
    if len(widths) != len(defaults):
        raise TopopruneError(
            f"{arch} takes {len(defaults)} widths {layout}, got {len(widths)}; "
            f"start from default_widths({arch!r})"
        )
    checked = []
    for position, width in enumerate(widths):
        try:
            value = index(width)
        except TypeError:
            value = 0
        if isinstance(width, bool) or value < 1:
            raise TopopruneError(
                f"{arch} widths must be positive ints; entry {position} is {width!r}"
            )
        checked.append(value)
    return checked
