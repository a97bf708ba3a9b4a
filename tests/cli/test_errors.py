"""Every error a user can cause on the command line: exit code 2, one line, no traceback, and
nothing written. One case per row of docs/errors.md (a test keeps the two in step)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from topoprune.cli import main
from topoprune.models import create_model

NO_OUT = "<no --out>"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
TRAIN = ["--model", "lenet5", "--dataset", "digits", "--max-steps", "1", "--no-progress"]
PRUNE = ["prune", "--method", "rgp", "--sparsity", "0.5", *TRAIN]
EXP = ["prune", "--method", "exp", "--rates", "[0.0, 0.5]", *TRAIN, "--epochs", "2"]

# id: (argv with {out} and {file}, fragment of the message, what to prepare)
CASES = {
    "unknown-command": (["shrink"], "invalid choice: 'shrink'", None),
    "missing-option": (["train", "--dataset", "digits"], "required: --model", None),
    "unknown-model": (["train", "--model", "nosuch", "--dataset", "digits"], "unknown model", None),
    "unknown-dataset": (
        ["train", "--model", "lenet5", "--dataset", "mnist"],
        "unknown dataset",
        None,
    ),
    "missing-root": (
        ["train", "--model", "lenet5", "--dataset", "cifar10", "--root", "{out}/nowhere"],
        "no such folder",
        None,
    ),
    "bad-widths": (["train", *TRAIN, "--widths", "1,x"], "--widths must be comma-separated", None),
    "wrong-widths": (["train", *TRAIN, "--widths", "1,2"], "lenet5 takes 4 widths", None),
    "epochs": (["train", *TRAIN, "--epochs", "0"], "epochs must be >= 1", None),
    "batch-size": (["train", *TRAIN, "--batch-size", "0"], "batch size must be >= 1", None),
    "lr-nan": (["train", *TRAIN, "--lr", "nan"], "learning rate must be a finite number", None),
    "lr-negative": (["train", *TRAIN, "--lr", "-1"], "learning rate must be a finite number", None),
    "momentum": (["train", *TRAIN, "--momentum", "-1"], "momentum must be a finite number", None),
    "max-steps": (["train", *TRAIN, "--max-steps", "0"], "max steps per epoch must be >= 1", None),
    "milestones": (["train", *TRAIN, "--milestones", "a"], "--milestones must be", None),
    "device-bogus": (["train", *TRAIN, "--device", "bogus"], "unknown device 'bogus'", None),
    "device-cuda": (["train", *TRAIN, "--device", "cuda"], "has no CUDA device", "no-cuda"),
    "tensorboard-missing": (
        ["train", *TRAIN, "--tensorboard", "{out}/tb"],
        "--tensorboard needs the tensorboard package",
        "no-tensorboard",
    ),
    "out-is-file": (["train", *TRAIN], "is a file: give a folder", "out-file"),
    "out-under-file": (["train", *TRAIN], "lies under the file", "out-under-file"),
    "out-unwritable": (["train", *TRAIN], "cannot write in", "unwritable"),
    "out-holds-run": (["train", *TRAIN], "already holds a run: --resume", "run"),
    "resume-without-out": (
        ["train", *TRAIN, "--resume", NO_OUT],
        "--resume needs --out",
        None,
    ),
    "resume-nothing": (["train", *TRAIN, "--resume"], "nothing to resume", "empty-out"),
    "resume-changed": (
        ["train", *TRAIN, "--resume", "--lr", "0.2"],
        "it was run with train.lr = 0.1, not 0.2",
        "run",
    ),
    "resume-and-overwrite": (
        ["train", *TRAIN, "--resume", "--overwrite"],
        "--resume and --overwrite contradict",
        None,
    ),
    "damaged-checkpoint": (["train", *TRAIN, "--resume"], "not a readable checkpoint", "truncated"),
    "unknown-method": (
        ["prune", "--method", "magic", "--sparsity", "0.5", *TRAIN],
        "unknown pruning method 'magic'",
        None,
    ),
    "unknown-option": ([*PRUNE, "--nodez", "8"], "rgp has no option --nodez", None),
    "ill-typed-option": ([*PRUNE, "--nodes", "eight"], "rgp option 'nodes' must be int", None),
    "stray-argument": ([*PRUNE, "stray"], "unexpected argument 'stray'", None),
    "sparsity": (
        ["prune", "--method", "rgp", "--sparsity", "1.5", *TRAIN],
        "sparsity must lie in [0, 1)",
        None,
    ),
    "odd-degree": ([*PRUNE[:4], "0.8", *TRAIN, "--nodes", "15"], "n*k must be even", None),
    "graph-missing": ([*PRUNE, "--graph", "{out}/none.npy"], "none.npy", None),
    "graph-random-bytes": (
        [*PRUNE, "--graph", "{file}"],
        "is not a readable .npy file",
        "bytes.npy",
    ),
    "graph-empty-npy": ([*PRUNE, "--graph", "{file}"], "is not a readable .npy file", "empty.npy"),
    "graph-does-not-fit": ([*PRUNE, "--graph", "{file}"], "has only 6 channels", "big-graph.npy"),
    "latency-batch": ([*PRUNE, "--latency-batch", "0"], "the latency batch must be >= 1", None),
    "smallworld-too-sparse": (
        ["prune", "--method", "smallworld", "--sparsity", "0.99", *TRAIN],
        "smallworld can remove at most",
        None,
    ),
    "search-without-out": (
        ["prune", "--method", "smallworld", "--sparsity", "0.5", *TRAIN, "--search", NO_OUT],
        "--search needs --out",
        None,
    ),
    "sweep-malformed": ([*PRUNE, "--sweep", "x"], "--sweep must look like KEY=V1,V2", None),
    "bench-missing-config": (["bench", "--config", "{out}/none.yaml"], "no bench config at", None),
    "bench-random-bytes": (["bench", "--config", "{file}"], "is not a text file", "bytes.yaml"),
    "bench-bad-yaml": (["bench", "--config", "{file}"], "is not valid YAML", "bad.yaml"),
    "bench-unknown-key": (["bench", "--config", "{file}"], "unknown key 'optimizer'", "key.yaml"),
    "bench-workers": (
        ["bench", "--config", "{file}", "--workers", "0"],
        "workers must be an integer",
        "ok.yaml",
    ),
    "bench-shard": (
        ["bench", "--config", "{file}", "--shard", "0/3"],
        "--shard must look like I/N",
        "ok.yaml",
    ),
    "bench-nothing-to-do": (["bench"], "bench needs --config FILE to run, or --report DIR", None),
    "bench-report-not-a-bench": (["bench", "--report", "{out}"], "holds no bench", None),
    "study-unknown-model": (
        [
            "study",
            "aspl",
            "--model",
            "nosuch",
            "--dataset",
            "digits",
            "--nodes",
            "8",
            "--degree",
            "4",
        ],
        "unknown model 'nosuch'",
        None,
    ),
    "study-odd-degree": (
        ["study", "aspl", *TRAIN, "--nodes", "7", "--degree", "3"],
        "n*k must be even",
        None,
    ),
    "count-input": (
        ["count", "--model", "lenet5", "--input", "3x"],
        "--input must look like CxHxW",
        None,
    ),
    "graph-info-not-text": (["graph", "info", "{file}"], "is not a text edge list", "bytes.txt"),
    "sparsity-missing": (["prune", "--method", "rgp", *TRAIN], "rgp needs --sparsity", None),
    "graphpruning-macs": (
        ["prune", "--method", "graphpruning", "--macs", "1.5", *TRAIN],
        "keeps a fraction of the MACs in (0, 1]",
        None,
    ),
    "graphpruning-two-budgets": (
        ["prune", "--method", "graphpruning", "--macs", "0.5", "--params", "0.5", *TRAIN],
        "graphpruning takes one budget: macs or params, not both",
        None,
    ),
    "graphpruning-parents": (
        ["prune", "--method", "graphpruning", "--macs", "0.5", "--parents", "60", *TRAIN],
        "parents cannot exceed the population",
        None,
    ),
    "exp-too-few-epochs": (
        ["prune", "--method", "exp", "--rates", "[0.0, 0.5]", *TRAIN, "--epochs", "1"],
        "leave 0 of the 1 epoch(s) for dense training",
        None,
    ),
    "exp-finetune-total": (
        [*EXP, "--finetune-total", "1"],
        "exp finetune_total applies to one_shot only: set one_shot: true",
        None,
    ),
    "bench-publish-shard": (
        ["bench", "--config", "{file}", "--shard", "1/2", "--publish", "{out}/results.md"],
        "--publish needs the whole grid: publish with --report DIR",
        "bench.yaml",
    ),
    "exp-pretrain-fraction": (
        [*EXP, "--pretrain-fraction", "0.5"],
        "exp has no option --pretrain-fraction",
        None,
    ),
    "from-at-init": ([*PRUNE, "--from", "{out}/none"], "rgp trains from scratch", None),
    "from-missing": ([*EXP, "--from", "{out}/none"], "no such checkpoint or run folder", None),
    "from-random-bytes": ([*EXP, "--from", "{file}"], "not a readable state dict", "bytes.pt"),
    "from-other-model": ([*EXP, "--from", "{file}"], "holds another model", "vgg.pt"),
    "export-missing-run": (
        ["export", "{out}/none", "--onnx", "{out}.onnx"],
        "no such run folder",
        None,
    ),
    "export-not-a-run": (
        ["export", "{out}", "--onnx", "{out}.onnx"],
        "is not a run folder (no run.json)",
        "empty-out",
    ),
    "export-damaged-checkpoint": (
        ["export", "{out}", "--onnx", "{out}.onnx"],
        "checkpoint.pt: not a readable state dict or checkpoint",
        "truncated",
    ),
    "export-batch": (
        ["export", "{out}", "--onnx", "{out}.onnx", "--batch", "0"],
        "--batch must be >= 1, got 0",
        None,
    ),
    "export-onnx-is-folder": (
        ["export", "{out}", "--onnx", "{out}"],
        "is a folder: give a file path",
        "empty-out",
    ),
    "export-onnx-no-folder": (
        ["export", "{out}", "--onnx", "{out}/nowhere/model.onnx"],
        "nowhere does not exist",
        None,
    ),
    "export-onnx-unwritable": (
        ["export", "{out}", "--onnx", "{out}.onnx"],
        "choose another --onnx path",
        "unwritable",
    ),
    "export-onnx-missing": (
        ["export", "{out}", "--onnx", "{out}.onnx"],
        "ONNX export needs onnxruntime: pip install 'topoprune[export]'",
        "no-onnxruntime",
    ),
}

CONFIG = (
    "model: lenet5\ndataset: digits\nmethods: [dense]\nsparsities: [0.5]\n"
    "training: {epochs: 1, max_steps_per_epoch: 1}\nlatency_batch: null\n"
)


def _prepare(kind, tmp_path, out, monkeypatch):
    """Make what a case needs; returns the {file} path (or None)."""
    if kind is None:
        return None
    if kind == "no-cuda":
        monkeypatch.setattr("torch.cuda.is_available", lambda: False)
        return None
    if kind == "no-tensorboard":
        monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
        return None
    if kind == "no-onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
        return None
    if kind == "out-file":
        out.write_text("x")
        return None
    if kind == "out-under-file":
        out.parent.write_text("x")
        return None
    if kind == "unwritable":
        monkeypatch.setattr("topoprune.files.can_create", lambda folder: False)
        return None
    if kind == "empty-out":
        out.mkdir()
        return None
    if kind in ("run", "truncated"):
        assert main(["train", *TRAIN, "--out", str(out)]) == 0
        if kind == "truncated":
            checkpoint = out / "checkpoint.pt"
            checkpoint.write_bytes(checkpoint.read_bytes()[:100])
        return None
    path = tmp_path / kind
    if kind.startswith("bytes"):
        path.write_bytes(np.random.default_rng(0).bytes(300))
    elif kind == "vgg.pt":
        torch.save(create_model("vgg11", in_channels=1).state_dict(), path)
    elif kind == "empty.npy":
        path.write_bytes(b"")
    elif kind == "big-graph.npy":
        ring = np.roll(np.eye(12, dtype=np.uint8), 1, 1)
        np.save(path, ring + ring.T)
    elif kind == "bad.yaml":
        path.write_text("model: [unclosed\n")
    elif kind == "key.yaml":
        path.write_text(CONFIG + "optimizer: adam\n")
    else:
        path.write_text(CONFIG)
    return path


def _exit_code(argv: list[str]) -> int:
    """``main``'s return code, or the code of argparse's own exit on a usage error."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_user_error_is_one_line_exit_2_and_writes_nothing(
    case, tmp_path, capsys, monkeypatch
):
    argv, fragment, kind = CASES[case]
    out = tmp_path / "file" / "run" if kind == "out-under-file" else tmp_path / "run"
    file = _prepare(kind, tmp_path, out, monkeypatch)
    capsys.readouterr()
    before = _listing(tmp_path)
    words = [word.format(out=out, file=file) for word in argv if word != NO_OUT]
    if argv[0] in ("train", "prune", "study") and NO_OUT not in argv:
        words += ["--out", str(out)]
    assert _exit_code(words) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("topoprune: error:"), err
    assert fragment in err[0], err[0]
    assert _listing(tmp_path) == before


def test_docs_errors_lists_every_case_and_only_those():
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", DOCS.read_text(), flags=re.MULTILINE)
    assert sorted(rows) == sorted(CASES)
