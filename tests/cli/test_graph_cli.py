"""`topoprune graph make|optimize|info|bank`: outputs, files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from topoprune.cli import main
from topoprune.graphs.generate import random_regular, ring_lattice
from topoprune.graphs.io import load_graph, load_json, save_graph
from topoprune.graphs.paths import moore_bound


@pytest.mark.parametrize(
    ("options", "extension", "degrees"),
    [
        (["--degree", "6"], ".json", {6}),
        (["--sparsity", "0.875", "--kind", "lattice"], ".npy", {8}),
        (["--degree", "5", "--kind", "regular"], ".edges", {5}),
        (["--kind", "complete"], ".txt", {63}),
    ],
)
def test_make_writes_the_requested_graph(tmp_path, capsys, options, extension, degrees):
    out = tmp_path / f"g{extension}"
    assert main(["graph", "make", "--nodes", "64", *options, "--seed", "3", "--out", str(out)]) == 0
    adj = load_graph(out)
    assert adj.shape == (64, 64) and set(adj.sum(axis=1).tolist()) == degrees
    assert nx.is_connected(nx.from_numpy_array(adj))
    assert capsys.readouterr().out.startswith(f"wrote {out}: n=64")


def test_make_is_seeded_and_matches_the_library(tmp_path):
    out = tmp_path / "g.npy"
    main(["graph", "make", "--nodes", "40", "--degree", "4", "--seed", "9", "--out", str(out)])
    assert np.array_equal(load_graph(out), random_regular(40, 4, seed=9))


def test_make_small_world_and_random_kinds(tmp_path):
    ws, er = tmp_path / "ws.npy", tmp_path / "er.npy"
    base = ["graph", "make", "--nodes", "50", "--degree", "4"]
    assert main([*base, "--kind", "ws", "--p", "0.2", "--out", str(ws)]) == 0
    assert main([*base, "--kind", "er", "--out", str(er)]) == 0
    assert int(load_graph(ws).sum()) == 200
    assert not np.array_equal(load_graph(ws), ring_lattice(50, 4))
    assert load_graph(er).shape == (50, 50)


def test_optimize_from_file_writes_graph_metadata_and_plot(tmp_path, capsys):
    start, out, plot = tmp_path / "start.json", tmp_path / "best.json", tmp_path / "run.png"
    save_graph(start, random_regular(32, 4, seed=1))
    argv = ["graph", "optimize", "--in", str(start), "--steps", "400", "--seed", "2"]
    assert main([*argv, "--out", str(out), "--plot", str(plot), "--no-progress"]) == 0
    adj, meta = load_json(out)
    assert (adj.sum(axis=1) == 4).all()
    assert meta["extra"]["steps"] == 400 and meta["strategy"] == "anneal" and meta["seed"] == 2
    assert meta["aspl"] <= meta["extra"]["start_aspl"]
    assert meta["moore_aspl"] == moore_bound(32, 4).aspl
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {plot}" in capsys.readouterr().out


def test_optimize_from_size_with_each_strategy(tmp_path):
    for strategy in ("greedy", "rgp"):
        out = tmp_path / f"{strategy}.txt"
        argv = ["graph", "optimize", "--nodes", "24", "--sparsity", "0.75", "--steps", "300"]
        assert main([*argv, "--strategy", strategy, "--out", str(out), "--no-progress"]) == 0
        assert set(load_graph(out).sum(axis=1).tolist()) == {6}


def test_info_prints_the_facts(tmp_path, capsys):
    path = tmp_path / "lattice.npy"
    save_graph(path, ring_lattice(16, 4))
    assert main(["graph", "info", str(path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    facts = {name: value.strip() for name, value in (line.split(":", 1) for line in printed)}
    assert facts == {
        "file": str(path),
        "nodes": "16",
        "edges": "32",
        "degree": "4",
        "regular": "yes",
        "connected": "yes",
        "ASPL": "2.4000",
        "diameter": "4",
        "Moore ASPL": "1.7333",
        "Moore diameter": "2",
        "gap to Moore": f"{2.4 / moore_bound(16, 4).aspl - 1:+.2%}",
        "clustering": "0.5000",
    }


def test_bank_writes_graph_files_and_index(tmp_path, capsys):
    out = tmp_path / "bank"
    argv = ["graph", "bank", "--nodes", "16", "--degree", "4", "--count", "3", "--seconds", "0.5"]
    assert main([*argv, "--format", "txt", "--out", str(out), "--no-progress"]) == 0
    assert sorted(os.listdir(out)) == ["M0.txt", "M1.txt", "M2.txt", "index.csv", "index.json"]
    rows = json.loads((out / "index.json").read_text())["graphs"]
    assert [row["file"] for row in rows] == ["M0.txt", "M1.txt", "M2.txt"]
    assert rows[0]["aspl"] <= rows[1]["aspl"] <= rows[2]["aspl"] == pytest.approx(2.4)
    assert np.array_equal(load_graph(out / "M2.txt"), ring_lattice(16, 4))
    assert "wrote 3 graphs" in capsys.readouterr().out


BAD_ARGS = {
    "odd n*k": ["make", "--nodes", "63", "--degree", "5"],
    "bad sparsity": ["make", "--nodes", "64", "--sparsity", "1.2"],
    "sparsity too high": ["make", "--nodes", "64", "--sparsity", "0.99"],
    "ws without p": ["make", "--nodes", "64", "--degree", "4", "--kind", "ws"],
    "no degree": ["make", "--nodes", "64"],
    "missing input": ["optimize", "--in", "missing.json", "--steps", "10"],
    "input and size": ["optimize", "--in", "x.json", "--nodes", "8", "--degree", "2"],
    "plot not png": ["optimize", "--nodes", "16", "--degree", "4", "--plot", "p.jpg"],
    "bank count": ["bank", "--nodes", "16", "--degree", "4", "--count", "1"],
}


@pytest.mark.parametrize("args", BAD_ARGS.values(), ids=BAD_ARGS.keys())
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    out = "bank" if args[0] == "bank" else "out.json"
    assert main(["graph", *args, "--out", out]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("topoprune: error: ")
    assert os.listdir(tmp_path) == []


def test_console_script_in_a_subprocess(tmp_path):
    script = Path(sys.executable).with_name("topoprune")
    out = tmp_path / "g.edges"
    done = subprocess.run(
        [script, "graph", "make", "--nodes", "20", "--degree", "3", "--out", out],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == 30
    failed = subprocess.run(
        [script, "graph", "make", "--nodes", "21", "--degree", "3", "--out", tmp_path / "odd.json"],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr.splitlines() == [
        "topoprune: error: no 3-regular graph on 21 nodes exists: n*k must be even; "
        "change the degree (or sparsity) or the node count"
    ]
    assert sorted(os.listdir(tmp_path)) == ["g.edges"]
