"""``topoprune export``: a run folder in, a checked ONNX file with a dynamic batch out."""

import onnxruntime  # a test dependency: the test and export extras install it
import pytest
import torch

from topoprune.cli import main
from topoprune.experiments.trained import run_example, trained_model


def test_export_writes_a_checked_onnx_file_of_the_trained_model(tiny_rgp_run, tmp_path, capsys):
    path = tmp_path / "lenet5.onnx"
    assert main(["export", str(tiny_rgp_run), "--onnx", str(path), "--batch", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "layers realized" in lines[0]
    assert lines[-1].startswith(f"wrote {path} (") and "at batch 8, 9: max abs diff" in lines[-1]
    model, input_size = trained_model(tiny_rgp_run)
    x = run_example(input_size, 3, seed=5)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    with torch.no_grad():
        expected = model(x)
    assert float((got - expected).abs().max()) <= 1e-4 * max(float(expected.abs().max()), 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.onnx"]


def test_no_check_skips_onnxruntime(tiny_rgp_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        "topoprune.compact.export._check", lambda *args: pytest.fail("checked anyway")
    )
    path = tmp_path / "unchecked.onnx"
    assert (
        main(["export", str(tiny_rgp_run), "--onnx", str(path), "--batch", "2", "--no-check"]) == 0
    )
    assert capsys.readouterr().out.strip().endswith("not checked in onnxruntime")
    assert path.stat().st_size > 0
