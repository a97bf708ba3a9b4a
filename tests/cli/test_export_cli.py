"""``topoprune export``: a run folder in, a checked ONNX file with a dynamic batch out."""

import pytest
import torch

from topoprune.cli import main
from topoprune.experiments.protocols import run_pruned
from topoprune.experiments.trained import run_example, trained_model
from topoprune.training import TrainConfig

onnxruntime = pytest.importorskip("onnxruntime")  # the test and export extras install it


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished RGP run of LeNet-5 on the bundled digits: one step of training."""
    out = tmp_path_factory.mktemp("runs") / "rgp"
    config = TrainConfig(epochs=1, max_steps_per_epoch=1, batch_size=32)
    run_pruned(
        "lenet5",
        "digits",
        config,
        method="rgp",
        sparsity=0.5,
        prune_options={"nodes": 6},
        out_dir=out,
        progress=False,
        measure_speed=False,
    )
    return out


def test_export_writes_a_checked_onnx_file_of_the_trained_model(run_dir, tmp_path, capsys):
    path = tmp_path / "lenet5.onnx"
    assert main(["export", str(run_dir), "--onnx", str(path), "--batch", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "layers realized" in lines[0]
    assert lines[-1].startswith(f"wrote {path} (") and "at batch 8, 9: max abs diff" in lines[-1]
    model, input_size = trained_model(run_dir)
    x = run_example(input_size, 3, seed=5)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    with torch.no_grad():
        expected = model(x)
    assert float((got - expected).abs().max()) <= 1e-4 * max(float(expected.abs().max()), 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.onnx"]


def test_no_check_skips_onnxruntime(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        "topoprune.compact.export._check", lambda *args: pytest.fail("checked anyway")
    )
    path = tmp_path / "unchecked.onnx"
    assert main(["export", str(run_dir), "--onnx", str(path), "--batch", "2", "--no-check"]) == 0
    assert capsys.readouterr().out.strip().endswith("not checked in onnxruntime")
    assert path.stat().st_size > 0
