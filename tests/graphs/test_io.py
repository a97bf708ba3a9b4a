"""Graph files: exact round trips, the Graph Golf format, metadata, atomic writes, errors."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import (
    edge_list,
    erdos_renyi,
    random_regular,
    ring_lattice,
    watts_strogatz,
)
from topoprune.graphs.io import (
    check_output_path,
    graph_format,
    graph_metadata,
    load_graph,
    load_json,
    load_npy,
    read_edgelist,
    save_bank,
    save_graph,
    save_json,
    save_npy,
    write_edgelist,
)
from topoprune.graphs.paths import moore_bound

GRAPHS = {
    "regular": random_regular(40, 6, seed=1),
    "lattice": ring_lattice(12, 3),
    "small world": watts_strogatz(30, 4, 0.3, seed=2),
    "disconnected": erdos_renyi(25, 0.05, seed=3),
}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(sorted(GRAPHS)),
    extension=st.sampled_from([".npy", ".json", ".txt", ".edges"]),
)
def test_every_format_round_trips_exactly(tmp_path, name, extension):
    adj = GRAPHS[name]
    path = tmp_path / f"graph{extension}"
    save_graph(path, adj, seed=3, strategy="test")
    if extension in (".txt", ".edges"):  # an edge list does not list isolated nodes: give n
        loaded = read_edgelist(path, nodes=len(adj))
    else:
        loaded = load_graph(path)
    assert loaded.dtype == np.uint8
    assert np.array_equal(loaded, adj)


def test_specific_readers_and_writers(tmp_path):
    adj = GRAPHS["regular"]
    save_npy(tmp_path / "a.npy", adj)
    write_edgelist(tmp_path / "a.txt", adj)
    save_json(tmp_path / "a.json", adj)
    assert np.array_equal(load_graph(tmp_path / "a.txt"), adj)
    assert np.array_equal(load_npy(tmp_path / "a.npy"), adj)
    assert np.array_equal(read_edgelist(tmp_path / "a.txt"), adj)
    assert np.array_equal(load_json(tmp_path / "a.json")[0], adj)
    lines = (tmp_path / "a.txt").read_text().splitlines()
    assert len(lines) == 120 and lines[0].split()[0] == "0"
    assert read_edgelist(tmp_path / "a.txt", nodes=45).shape == (45, 45)


def test_a_graph_golf_edge_list_parses(tmp_path):
    # The Petersen graph, in any order, either orientation, with a comment and a blank line.
    text = "# Petersen graph\n1 0\n0 4\n0 5\n2 1\n1 6\n2 3\n2 7\n\n"
    text += "3 4\n3 8\n4 9\n5 7\n5 8\n6 8\n6 9\n7 9\n"
    path = tmp_path / "petersen.edges"
    path.write_text(text)
    adj = read_edgelist(path)
    expected = nx.to_numpy_array(nx.petersen_graph(), nodelist=range(10), dtype=np.uint8)
    assert np.array_equal(adj, expected)
    meta = graph_metadata(adj)
    assert (meta["n"], meta["edge_count"], meta["k"], meta["diameter"]) == (10, 15, 3, 2)
    assert meta["aspl"] == pytest.approx(5 / 3)  # 15 pairs at 1, 30 at 2
    assert meta["gap"] == pytest.approx(0.0)  # the Petersen graph is a Moore graph


def test_json_metadata(tmp_path):
    adj = GRAPHS["regular"]
    path = tmp_path / "g.json"
    save_json(path, adj, seed=11, strategy="anneal", extra={"steps": np.int64(500), "t": 1.5})
    loaded, meta = load_json(path)
    assert np.array_equal(loaded, adj)
    aspl = nx.average_shortest_path_length(nx.from_numpy_array(adj))
    bound = moore_bound(40, 6)
    assert meta["n"] == 40 and meta["k"] == 6 and meta["edge_count"] == 120
    assert meta["seed"] == 11 and meta["strategy"] == "anneal"
    assert meta["extra"] == {"steps": 500, "t": 1.5}
    assert meta["aspl"] == pytest.approx(aspl, rel=1e-12)
    assert meta["diameter"] == nx.diameter(nx.from_numpy_array(adj))
    assert (meta["moore_aspl"], meta["moore_diameter"]) == (bound.aspl, bound.diameter)
    assert meta["gap"] == pytest.approx(aspl / bound.aspl - 1, rel=1e-12)
    assert "edge_list" not in meta
    assert json.loads(path.read_text())["edge_list"] == edge_list(adj).tolist()


def test_json_of_a_disconnected_irregular_graph_has_nulls(tmp_path):
    save_json(tmp_path / "d.json", GRAPHS["disconnected"])
    meta = json.loads((tmp_path / "d.json").read_text())
    assert meta["connected"] is False and meta["k"] is None
    for key in ("aspl", "diameter", "moore_aspl", "moore_diameter", "gap"):
        assert meta[key] is None, key


def test_writers_replace_files_and_create_folders(tmp_path):
    path = tmp_path / "new" / "folder" / "g.edges"
    write_edgelist(path, ring_lattice(8, 2))
    write_edgelist(path, ring_lattice(6, 2))
    assert path.read_text() == "0 1\n0 5\n1 2\n2 3\n3 4\n4 5\n"
    assert os.listdir(path.parent) == ["g.edges"]  # no temporary file left behind


@dataclass
class FakeBankGraph:
    adj: np.ndarray
    aspl: float
    diameter: int
    label: str


def test_save_bank_writes_graphs_and_index(tmp_path):
    graphs = [
        FakeBankGraph(random_regular(16, 4, seed=0), 0.0, 0, "M0"),
        FakeBankGraph(ring_lattice(16, 4), 0.0, 0, "M1"),
    ]
    index = save_bank(tmp_path / "bank", graphs, extension=".npy", seed=4)
    assert index == tmp_path / "bank" / "index.json"
    assert sorted(os.listdir(tmp_path / "bank")) == ["M0.npy", "M1.npy", "index.csv", "index.json"]
    assert np.array_equal(load_graph(tmp_path / "bank" / "M1.npy"), ring_lattice(16, 4))
    rows = json.loads(index.read_text())["graphs"]
    assert [row["label"] for row in rows] == ["M0", "M1"]
    assert rows[1]["aspl"] == pytest.approx(36 / 15) and rows[1]["diameter"] == 4  # 4+4+4+3 nodes
    with open(tmp_path / "bank" / "index.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert [row["file"] for row in table] == ["M0.npy", "M1.npy"]
    assert float(table[1]["aspl"]) == pytest.approx(rows[1]["aspl"])


def test_graph_format_by_extension():
    assert [graph_format(f"g{e}") for e in (".npy", ".JSON", ".txt", ".edges")] == [
        "npy",
        "json",
        "edgelist",
        "edgelist",
    ]


def write(path, text: str):
    path.write_text(text)
    return path


BAD_FILES = {
    "missing": lambda d: load_graph(d / "missing.json"),
    "unknown extension": lambda d: load_graph(write(d / "g.csv", "0 1\n")),
    "three fields": lambda d: read_edgelist(write(d / "g.txt", "0 1 2\n")),
    "not a number": lambda d: read_edgelist(write(d / "g.txt", "0 x\n")),
    "negative node": lambda d: read_edgelist(write(d / "g.txt", "0 -1\n")),
    "self-loop": lambda d: read_edgelist(write(d / "g.txt", "0 1\n1 2\n2 2\n")),
    "repeated edge": lambda d: read_edgelist(write(d / "g.txt", "0 1\n1 2\n2 0\n1 0\n")),
    "empty edge list": lambda d: read_edgelist(write(d / "g.txt", "# nothing\n")),
    "node out of range": lambda d: read_edgelist(write(d / "g.txt", "0 1\n1 5\n"), nodes=4),
    "not json": lambda d: load_json(write(d / "g.json", "{oops")),
    "foreign json": lambda d: load_json(write(d / "g.json", '{"n": 3}')),
    "json without edges": lambda d: load_json(
        write(d / "g.json", '{"format": "topoprune-graph", "n": 3}')
    ),
    "corrupt npy": lambda d: load_npy(write(d / "g.npy", "not numpy")),
    "asymmetric npy": lambda d: save_npy(d / "g.npy", np.triu(np.ones((4, 4), np.uint8), 1)),
    "output is a folder": lambda d: check_output_path(d),
    "output extension": lambda d: check_output_path(d / "no" / "g.csv"),
    "write extension": lambda d: save_graph(d / "no" / "g.png", ring_lattice(6, 2)),
    "bank into a file": lambda d: save_bank(write(d / "bank", ""), []),
    "bank bad extension": lambda d: save_bank(d / "bank", [], extension=".csv"),
}


@pytest.mark.parametrize("call", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_raise_topoprune_error(tmp_path, call):
    with pytest.raises(TopopruneError):
        call(tmp_path)
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / "bank").is_dir()
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
