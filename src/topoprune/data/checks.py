"""Checks on what a user passes to a dataset loader: roots, layouts and size options.

Every failure raises :class:`~topoprune.errors.TopopruneError` with one line that names the
expected layout, so the CLI can print it as is.
"""

import os
from pathlib import Path

from topoprune.errors import TopopruneError


def one_line(text: object) -> str:
    """Collapse ``text`` (an exception, a path, ...) onto one line of single spaces.

    >>> one_line("bad\\n  file")
    'bad file'
    """
    return " ".join(str(text).split())


def layout_error(name: str, layout: str, root: object, reason: str) -> TopopruneError:
    """Build the one-line error for a missing or malformed dataset root.

    >>> str(layout_error("svhn", "ROOT/train_32x32.mat", "/x", "no such folder"))
    'svhn: expected ROOT/train_32x32.mat; got /x (no such folder)'
    """
    return TopopruneError(f"{name}: expected {layout}; got {one_line(root)} ({one_line(reason)})")


def require_root(name: str, root: str | os.PathLike | None, layout: str) -> Path:
    """Return ``root`` as an existing folder, or raise saying which layout it must hold.

    ``root=None`` raises an error that tells the user to pass ``--root``.
    """
    if root is None:
        raise TopopruneError(
            f"{name}: no dataset root given; pass --root DIR where DIR holds {layout}"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise layout_error(name, layout, path, "no such folder")
    return path


def image_size(value: int | tuple[int, int], option: str = "image_size") -> tuple[int, int]:
    """Read an image-size option given as ``S`` (square) or ``(H, W)``; both must be positive.

    >>> image_size(32)
    (32, 32)
    >>> image_size((24, 16))
    (24, 16)
    """
    try:
        sides = (value, value) if isinstance(value, int) else tuple(value)
    except TypeError:  # not a number and not a pair: reported below
        sides = ()
    if len(sides) != 2 or not all(_is_positive_int(side) for side in sides):
        raise TopopruneError(f"{option} must be a positive int S or a pair (H, W); got {value!r}")
    return sides


def positive_int(value: int, option: str) -> int:
    """Return ``value`` if it is an int > 0, else raise naming ``option``."""
    if not _is_positive_int(value):
        raise TopopruneError(f"{option} must be a positive integer; got {value!r}")
    return value


def non_negative_int(value: int, option: str) -> int:
    """Return ``value`` if it is an int >= 0 (a seed, say), else raise naming ``option``."""
    if not _is_int(value) or value < 0:
        raise TopopruneError(f"{option} must be a non-negative integer; got {value!r}")
    return value


def _is_positive_int(value: object) -> bool:
    return _is_int(value) and value > 0


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
