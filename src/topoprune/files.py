"""Atomic file writes, shared by every layer of the package (no torch, no numpy).

A file is written to a temporary name in the target's folder and renamed over the target, so a
crash never leaves a half-written checkpoint, graph, log or report behind. Under torchrun only
rank 0 writes: on the other ranks (``RANK`` > 0) every write is skipped, so that the ranks of
one run never race for the same files.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def is_main_process() -> bool:
    """Whether this process writes: True unless torchrun made it a rank other than 0."""
    return int(os.environ.get("RANK", "0")) == 0


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it onto ``path``.

    >>> import tempfile
    >>> path = atomic_write(Path(tempfile.mkdtemp()) / "out.bin", lambda f: f.write(b"abc"))
    >>> path.read_bytes()
    b'abc'
    """
    path = Path(path)
    if not is_main_process():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp_name, 0o666 & ~_current_umask())  # mkstemp makes it private (0600)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a UTF-8 text file."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def strict(value: Any) -> Any:
    """``value`` with every infinite or NaN float replaced by None, so that it is strict JSON.

    >>> strict({"loss": float("nan"), "acc": [1.0, float("inf")]})
    {'loss': None, 'acc': [1.0, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    return value


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented, strict JSON (non-finite numbers as null)."""
    text = json.dumps(strict(obj), indent=2, sort_keys=True, allow_nan=False)
    return write_text(path, text + "\n")


def write_jsonl(path: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    """Atomically (re)write a strict JSON-lines file with one row per line."""
    lines = (json.dumps(strict(row), sort_keys=True, allow_nan=False) + "\n" for row in rows)
    return write_text(path, "".join(lines))


def can_create(folder: Path) -> bool:
    """Whether a file can be created in the existing ``folder`` (a probe is made and removed)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def check_writable(folder: str | os.PathLike) -> None:
    """Refuse a ``folder`` that could not be created or written, before any work starts."""
    from topoprune.errors import TopopruneError

    folder = Path(folder)
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise TopopruneError(f"cannot make the folder {folder}: {existing} is a file")
    if not can_create(existing):
        raise TopopruneError(f"cannot write in {existing}: choose another --out")
