"""A file of realize's per-layer choices, so that the same layer on the same input shape, thread
count and machine is timed once.

A key names everything the timing depends on (:func:`choice_key`): the layer (the module's
``repr``: kind, channels, kernel, stride, padding, the mask's group shape), the input shape (so
batch 1 and batch 64 are chosen apart), the candidates offered, torch's thread count, the torch
version and this CPU. The value is the chosen candidate and the medians that chose it. The file
is JSON, rewritten atomically; concurrent writers may lose each other's new entries, never
corrupt the file.

>>> import tempfile
>>> from pathlib import Path
>>> cache = ChoiceCache(Path(tempfile.mkdtemp()) / "choices.json")
>>> cache.put("k", "grouped", {"dense": 2.0, "grouped": 1.0}); cache.save()
>>> ChoiceCache(cache.path).get("k")
('grouped', {'dense': 2.0, 'grouped': 1.0})
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import torch

from topoprune import native
from topoprune.files import write_json


def default_path() -> Path:
    """``$TOPOPRUNE_CACHE_DIR/realize-choices.json`` (else under ``~/.cache/topoprune``)."""
    return native.cache_dir().parent / "realize-choices.json"


def choice_key(layer: str, input_shape: Iterable[int], candidates: Iterable[str]) -> str:
    """A digest of what a layer's timing depends on (see the module docstring)."""
    parts = [
        layer,
        "x".join(str(size) for size in input_shape),
        ",".join(sorted(candidates)),
        f"threads={torch.get_num_threads()}",
        torch.__version__,
        native.cpu_signature(),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class ChoiceCache:
    """Chosen candidates by :func:`choice_key`, read from and saved to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError):  # no cache yet, or a damaged one: start afresh
            loaded = {}
        self.entries: dict[str, dict] = loaded if isinstance(loaded, dict) else {}

    def get(self, key: str) -> tuple[str, dict[str, float]] | None:
        """``(chosen, medians_ms)`` for ``key``, or None."""
        entry = self.entries.get(key)
        if not isinstance(entry, dict) or "chosen" not in entry:
            return None
        return entry["chosen"], dict(entry.get("times_ms", {}))

    def put(self, key: str, chosen: str, times_ms: dict[str, float]) -> None:
        self.entries[key] = {"chosen": chosen, "times_ms": times_ms}

    def save(self) -> None:
        """Merge with what other processes saved meanwhile, then write atomically."""
        merged = ChoiceCache(self.path).entries
        merged.update(self.entries)
        write_json(self.path, merged)
