"""Reading and writing graphs: ``.npy`` adjacency, Graph Golf edge lists, JSON with metadata.

Every writer is atomic (:func:`topoprune.files.atomic_write`: a temporary file in the same
folder renamed over the target), so a crash never leaves a half-written file behind; missing
folders are created. The format of :func:`save_graph` / :func:`load_graph` follows the file
extension:

==================  =============================================================
``.npy``            the ``(n, n)`` uint8 adjacency matrix (``numpy.save``)
``.txt``/``.edges`` Graph Golf edge list: one ``u v`` line per edge, 0-based, u < v
``.json``           ``{"n", "k", ..., "edge_list": [[u, v], ...]}`` with metadata
==================  =============================================================

>>> import tempfile, pathlib
>>> from topoprune.graphs.generate import random_regular
>>> adj = random_regular(16, 4, seed=0)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "g.json"
>>> save_graph(path, adj, seed=0)
>>> bool((load_graph(path) == adj).all()), load_json(path)[1]["k"]
(True, 4)
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from topoprune.errors import TopopruneError
from topoprune.files import atomic_write, write_text
from topoprune.graphs.generate import check_adjacency, check_regular, edge_list
from topoprune.graphs.paths import distance_stats, moore_bound
from topoprune.graphs.spectrum import is_ramanujan, spectral_gap

__all__ = [
    "GRAPH_FORMATS",
    "check_output_path",
    "graph_format",
    "graph_metadata",
    "load_graph",
    "load_json",
    "load_npy",
    "read_edgelist",
    "save_bank",
    "save_graph",
    "save_json",
    "save_npy",
    "write_edgelist",
]

GRAPH_FORMATS = {".npy": "npy", ".json": "json", ".txt": "edgelist", ".edges": "edgelist"}
_JSON_FORMAT = "topoprune-graph"
_JSON_VERSION = 1


def graph_format(path: str | os.PathLike) -> str:
    """``"npy"``, ``"json"`` or ``"edgelist"``, from the extension of ``path``.

    >>> graph_format("best.edges")
    'edgelist'
    """
    suffix = Path(path).suffix.lower()
    if suffix not in GRAPH_FORMATS:
        raise TopopruneError(
            f"unknown graph file extension {suffix!r} in {os.fspath(path)!r}; "
            f"use one of {', '.join(GRAPH_FORMATS)}"
        )
    return GRAPH_FORMATS[suffix]


def check_output_path(path: str | os.PathLike) -> str:
    """Fail early unless ``path`` names a graph format; returns :func:`graph_format`.

    Call it before a long computation so that it does not end in an unwritable file name; a
    missing folder is not an error (writers create it).
    """
    kind = graph_format(path)
    if Path(path).is_dir():
        raise TopopruneError(f"{os.fspath(path)!r} is a folder; give a file name")
    return kind


def _existing(path: str | os.PathLike) -> Path:
    source = Path(path)
    if not source.is_file():
        raise TopopruneError(f"no such graph file: {os.fspath(path)!r}")
    return source


def save_npy(path: str | os.PathLike, adj: np.ndarray) -> None:
    """Write the adjacency matrix as a ``.npy`` file (uint8)."""
    adj = check_adjacency(adj)
    atomic_write(path, lambda file: np.save(file, adj, allow_pickle=False))


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """Read an adjacency matrix written by :func:`save_npy` (validated, uint8)."""
    try:
        adj = np.load(_existing(path), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        first = str(err).split(". ")[0] or err.__class__.__name__
        raise TopopruneError(f"{os.fspath(path)!r} is not a readable .npy file: {first}") from None
    return check_adjacency(adj)


def _edges_text(adj: np.ndarray) -> str:
    return "".join(f"{u} {v}\n" for u, v in edge_list(adj).tolist())


def write_edgelist(path: str | os.PathLike, adj: np.ndarray) -> None:
    """Write a Graph Golf edge list: one ``u v`` line per edge (0-based, u < v, sorted)."""
    write_text(path, _edges_text(check_adjacency(adj)))


def _parse_edges(text: str, source: str) -> np.ndarray:
    """``(m, 2)`` int64 edges from lines ``u v``; blank lines and ``#`` comments are skipped."""
    edges = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise TopopruneError(
                f"{source} line {number}: expected two node numbers 'u v', got {line.strip()!r}"
            )
        edges.append((int(fields[0]), int(fields[1])))
    return np.array(edges, dtype=np.int64).reshape(-1, 2)


def _adjacency_from_edges(edges: np.ndarray, n: int, source: str) -> np.ndarray:
    """Adjacency of ``n`` nodes from an ``(m, 2)`` edge array; loops and repeats are errors."""
    if len(edges) and edges.max() >= n:
        raise TopopruneError(f"{source}: node {edges.max()} is out of range for {n} nodes")
    if (edges[:, 0] == edges[:, 1]).any():
        raise TopopruneError(f"{source}: self-loops are not allowed")
    adj = np.zeros((n, n), dtype=np.uint8)
    adj[edges[:, 0], edges[:, 1]] = 1
    adj[edges[:, 1], edges[:, 0]] = 1
    if int(adj.sum()) != 2 * len(edges):
        raise TopopruneError(f"{source}: an edge is listed twice")
    return check_adjacency(adj)


def read_edgelist(path: str | os.PathLike, nodes: int | None = None) -> np.ndarray:
    """Read a Graph Golf edge list (``u v`` per line, 0-based; the order does not matter).

    The node count is ``nodes`` if given, else the largest node number plus one.
    """
    source = os.fspath(path)
    try:
        text = _existing(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TopopruneError(f"{source} is not a text edge list (not UTF-8)") from None
    edges = _parse_edges(text, source)
    if nodes is None:
        if not len(edges):
            raise TopopruneError(f"{source}: the edge list is empty")
        nodes = int(edges.max()) + 1
    return _adjacency_from_edges(edges, nodes, source)


def _finite_or_none(value: float) -> float | None:
    return None if math.isinf(value) else value


def graph_metadata(adj: np.ndarray) -> dict[str, Any]:
    """Structural facts about a graph, JSON-safe.

    Keys: ``n``, ``edge_count``, ``k`` (degree, or None if irregular), ``degree_min``,
    ``degree_mean`` and ``degree_max`` (defined for every graph), ``connected``,
    ``aspl`` and ``diameter`` (None if disconnected), ``moore_aspl`` and ``moore_diameter``
    (None unless k-regular with k >= 2), ``gap`` = aspl / moore_aspl - 1 (None if undefined),
    ``spectral_gap`` and ``ramanujan`` (:mod:`topoprune.graphs.spectrum`; None unless connected
    and k-regular with k >= 2).

    >>> from topoprune.graphs.generate import complete
    >>> graph_metadata(complete(4))["gap"]
    0.0
    """
    adj = check_adjacency(adj)
    n = len(adj)
    degrees = adj.sum(axis=1, dtype=np.int64)
    k = int(degrees[0]) if (degrees == degrees[0]).all() else None
    stats = distance_stats(adj)
    meta: dict[str, Any] = {
        "n": n,
        "edge_count": int(degrees.sum()) // 2,
        "k": k,
        "degree_min": int(degrees.min()),
        "degree_mean": float(degrees.mean()),
        "degree_max": int(degrees.max()),
        "connected": stats.connected,
        "aspl": _finite_or_none(stats.aspl),
        "diameter": stats.diameter if stats.connected else None,
        "moore_aspl": None,
        "moore_diameter": None,
        "gap": None,
        "spectral_gap": None,
        "ramanujan": None,
    }
    if k is not None and k >= 2:
        check_regular(n, k)
        bound = moore_bound(n, k)
        meta["moore_aspl"], meta["moore_diameter"] = bound.aspl, bound.diameter
        if stats.connected:
            meta["gap"] = stats.aspl / bound.aspl - 1.0
            meta["spectral_gap"] = spectral_gap(adj)
            meta["ramanujan"] = is_ramanujan(adj)
    return meta


def _json_default(value: object) -> object:
    """Make numpy scalars and arrays JSON-safe."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def save_json(
    path: str | os.PathLike,
    adj: np.ndarray,
    *,
    seed: int | None = None,
    strategy: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the graph as JSON: :func:`graph_metadata`, ``seed``, ``strategy``, ``extra``, edges.

    ``extra`` (e.g. ``SwapResult.to_dict()``) is stored under the key ``"extra"``; the edge list
    under ``"edge_list"`` as ``[[u, v], ...]`` with u < v, sorted.
    """
    adj = check_adjacency(adj)
    document = {
        "format": _JSON_FORMAT,
        "version": _JSON_VERSION,
        **graph_metadata(adj),
        "seed": seed,
        "strategy": strategy,
        "extra": dict(extra or {}),
        "edge_list": edge_list(adj).tolist(),
    }
    write_text(path, json.dumps(document, default=_json_default, allow_nan=False) + "\n")


def load_json(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a graph written by :func:`save_json`: ``(adj, metadata)``, metadata without edges."""
    source = os.fspath(path)
    try:
        document = json.loads(_existing(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TopopruneError(f"{source} is not valid JSON: {err}") from None
    if not isinstance(document, dict) or document.get("format") != _JSON_FORMAT:
        raise TopopruneError(f"{source} is not a topoprune graph file (no format {_JSON_FORMAT!r})")
    try:
        n = int(document["n"])
        edges = np.array(document.pop("edge_list"), dtype=np.int64).reshape(-1, 2)
    except (KeyError, TypeError, ValueError) as err:
        raise TopopruneError(f"{source}: malformed graph JSON ({err})") from None
    if len(edges) and edges.min() < 0:
        raise TopopruneError(f"{source}: node numbers must not be negative")
    return _adjacency_from_edges(edges, n, source), document


def save_graph(
    path: str | os.PathLike,
    adj: np.ndarray,
    *,
    seed: int | None = None,
    strategy: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write ``adj`` in the format named by the extension of ``path`` (see :func:`graph_format`).

    ``seed``, ``strategy`` and ``extra`` are kept only by JSON files.
    """
    kind = graph_format(path)
    if kind == "json":
        save_json(path, adj, seed=seed, strategy=strategy, extra=extra)
    elif kind == "npy":
        save_npy(path, adj)
    else:
        write_edgelist(path, adj)


def load_graph(path: str | os.PathLike) -> np.ndarray:
    """Read the adjacency matrix from a ``.npy``, ``.json`` or ``.txt``/``.edges`` graph file."""
    kind = graph_format(path)
    if kind == "json":
        return load_json(path)[0]
    if kind == "npy":
        return load_npy(path)
    return read_edgelist(path)


class _BankEntry(Protocol):
    adj: np.ndarray
    aspl: float
    diameter: int
    label: str


def save_bank(
    folder: str | os.PathLike,
    graphs: Iterable[_BankEntry],
    *,
    extension: str = ".json",
    seed: int | None = None,
) -> Path:
    """Write a graph bank: one ``<label><extension>`` file per graph plus ``index.json``/``.csv``.

    ``graphs`` are objects with ``adj``, ``aspl``, ``diameter`` and ``label`` (e.g.
    ``swap_bank.BankGraph``). The folder is created if needed. Each index row holds the label, file
    name, n, k, ASPL, diameter and the gap to the Moore bound. Returns the ``index.json`` path.
    """
    graph_format(f"graph{extension}")
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise TopopruneError(f"{os.fspath(folder)!r} is a file; give a folder for the graph bank")
    target.mkdir(parents=True, exist_ok=True)
    rows = []
    for graph in graphs:
        name = f"{graph.label}{extension}"
        save_graph(
            target / name, graph.adj, seed=seed, strategy="bank", extra={"label": graph.label}
        )
        meta = graph_metadata(graph.adj)
        rows.append(
            {
                "label": graph.label,
                "file": name,
                "n": meta["n"],
                "k": meta["k"],
                "aspl": meta["aspl"],
                "diameter": meta["diameter"],
                "gap": meta["gap"],
            }
        )
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else ["label", "file"])
    writer.writeheader()
    writer.writerows(rows)
    write_text(target / "index.csv", table.getvalue())
    index = target / "index.json"
    write_text(index, json.dumps({"seed": seed, "graphs": rows}, indent=2) + "\n")
    return index
