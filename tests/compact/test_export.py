"""ONNX export of realized models, saving and loading them, and rebuilding them from run folders."""

from pathlib import Path

import numpy as np
import onnxruntime  # a test dependency: the test and export extras install it
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.compact import BlockMaxPool2d, CompactConv2d, realize
from topoprune.compact import export as export_module
from topoprune.compact.export import export_onnx
from topoprune.compact.fuse import InferenceModel, fuse_for_inference
from topoprune.compact.masked import copy_model, is_masked_conv
from topoprune.compact.saved import load_realized, save_realized
from topoprune.compact.sparse_conv import SliceSparseConv2d
from topoprune.compact.sparse_linear import SparseLinear
from topoprune.compact.structure import find_block_structure
from topoprune.errors import TopopruneError
from topoprune.experiments.trained import model_from_state, realize_run, run_example, trained_model
from topoprune.models import create_model, default_widths
from topoprune.pruning import prune as prune_model
from topoprune.pruning.skips import attach_skips

ZOO = ["lenet5", "lenet5-caffe", "vgg11", "resnet20", "cresnet18", "mobilenetv2"]
"""One model of every family of the zoo (the deeper VGG and ResNet variants export alike)."""

IMAGE = {"lenet5-caffe": 28}


def calibrated(model: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
    """BatchNorm statistics from ``x`` and random affine parameters near (1, 0), as after
    training (folding them is then really tested); eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in model.modules():
            if isinstance(norm, nn.BatchNorm2d):
                norm.reset_running_stats()
                norm.momentum = None
                norm.weight.copy_(torch.rand(norm.num_features, generator=generator) + 0.5)
                norm.bias.copy_(torch.rand(norm.num_features, generator=generator) * 0.4 - 0.2)
        model.train()(x)
    return model.eval()


def rgp_model(name: str) -> tuple[nn.Module, torch.Tensor]:
    """A narrow zoo model (an eighth of the widths, at least 8) masked by RGP on 4 nodes, with
    calibrated BatchNorms, in eval mode; and a batch of 4 images for it."""
    widths = [max(8, width // 8) for width in default_widths(name)]
    model = create_model(name, widths=widths, seed=0)
    side = IMAGE.get(name, 32)
    x = torch.randn(4, 3, side, side, generator=torch.Generator().manual_seed(1))
    prune_model(model, "rgp", 0.5, nodes=4)
    return calibrated(model, x), x


def onnx_outputs(path: Path, x: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def assert_close(got: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-4) -> None:
    """``got`` equals ``expected`` up to ``tolerance`` times the output's scale."""
    assert got.shape == expected.shape
    scale = max(float(expected.abs().max()), 1.0)
    assert float((got - expected).abs().max()) <= tolerance * scale


@pytest.mark.parametrize("name", ZOO)
def test_a_realized_zoo_model_runs_in_onnxruntime_like_the_masked_model(name, tmp_path):
    model, x = rgp_model(name)
    realized = realize(model, x, repeats=1, warmup=0)
    assert realized.realize_report.layers
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(realized, x, path)
    assert report.checked and report.check_batches == (4, 5) and report.bytes == path.stat().st_size
    assert report.max_abs_diff <= 1e-4 * report.output_scale + 1e-6
    other = torch.randn(7, *x.shape[1:], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(other)
    assert expected.std(dim=0).max() > 1e-4  # outputs depend on the input: a real check
    assert_close(onnx_outputs(path, other), expected)  # batch 7: the batch is dynamic
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("name", ZOO)
def test_a_saved_realized_zoo_model_loads_with_the_same_outputs(name, tmp_path):
    model, x = rgp_model(name)
    realized = realize(model, x, repeats=1, warmup=0)
    loaded = load_realized(save_realized(realized, tmp_path / "model.pt", example_input=x))
    assert isinstance(loaded, InferenceModel) and not loaded.training
    assert loaded.realize_report == realized.realize_report
    with torch.no_grad():
        assert torch.equal(loaded(x), realized(x))
    with pytest.raises(TopopruneError, match="cannot train"):
        loaded.train()


def forced_compact(model: nn.Module) -> nn.Module:
    """``model`` with every block-structured masked conv as a CompactConv2d on the native
    kernel and every non-overlapping max pool as BlockMaxPool2d, whatever their speed."""
    for name, module in list(model.named_modules()):
        replacement = None
        if is_masked_conv(module) and module.groups == 1:
            if find_block_structure(module.weight_mask) is not None:
                replacement = CompactConv2d.from_masked(module, impl="direct")
        else:
            replacement = BlockMaxPool2d.from_pool(module)
        if replacement is not None:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, replacement)
    return model


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_compact_convs_on_the_native_kernel_export_through_their_torch_ops(name, tmp_path):
    model, x = rgp_model(name)
    fused = fuse_for_inference(forced_compact(copy_model(model)))
    kinds = {type(module) for module in fused.modules()}
    assert CompactConv2d in kinds and (name != "vgg11" or BlockMaxPool2d in kinds)
    export_onnx(fused, x, tmp_path / "m.onnx")
    with torch.no_grad():
        assert_close(onnx_outputs(tmp_path / "m.onnx", x), model(x))


def test_a_masked_model_exports_with_its_masks_folded_in_and_stays_masked(tmp_path):
    model, x = rgp_model("lenet5")
    report = export_onnx(model, x[:1], tmp_path / "masked.onnx")  # batch 1 still gives a
    assert report.check_batches == (1, 2)  # dynamic batch
    assert is_masked_conv(model.conv2) and not model.training  # untouched
    with torch.no_grad():
        assert_close(onnx_outputs(tmp_path / "masked.onnx", x), model(x))


def test_a_failed_check_writes_nothing_and_keeps_the_old_file(tmp_path, monkeypatch):
    model, x = nn.Sequential(nn.Linear(6, 3), nn.ReLU()), torch.randn(2, 6)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"the previous export")
    monkeypatch.setattr(export_module, "RELATIVE_TOLERANCE", -1.0)
    monkeypatch.setattr(export_module, "ABSOLUTE_FLOOR", -1.0)
    with pytest.raises(TopopruneError, match="differs from PyTorch.*not written"):
        export_onnx(model, x, path)
    assert path.read_bytes() == b"the previous export" and len(list(tmp_path.iterdir())) == 1


class DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if float(x.sum()) > 0 else x


def test_a_model_the_exporter_cannot_follow_is_one_error_and_no_file(tmp_path):
    with pytest.raises(TopopruneError, match="ONNX export failed"):
        export_onnx(DataDependent(), torch.randn(2, 3), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_export_packages_are_named(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "onnxscript", None)
    with pytest.raises(
        TopopruneError, match=r"needs onnxscript: pip install 'topoprune\[export\]'"
    ):
        export_onnx(nn.Linear(2, 2), torch.randn(2, 2), tmp_path / "m.onnx")


def test_realized_models_with_skip_projections_round_trip_and_export(tmp_path):
    model = create_model("lenet5", in_channels=1, seed=0)
    attach_skips(model, [{"source": "fc1", "target": "fc3", "in": 400, "out": 10}], seed=0)
    prune_model(model, "rgp", 0.5, nodes=4)
    x = torch.randn(3, 1, 28, 28)
    for trainable in (True, False):  # the skip's hooks: on the model's Linear layers either way
        realized = realize(model.eval(), x, repeats=1, warmup=0, trainable=trainable)
        loaded = load_realized(save_realized(realized, tmp_path / "m.pt", example_input=x))
        assert type(loaded).__name__ == type(realized).__name__
        with torch.no_grad():
            assert torch.equal(loaded(x), realized(x))
            assert_close(loaded(x), model(x))
    export_onnx(loaded, x, tmp_path / "m.onnx")  # the fused form: hooks outside its graph
    with torch.no_grad():
        assert_close(onnx_outputs(tmp_path / "m.onnx", x), model(x))


class Outside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_loading_refuses_foreign_classes_damaged_files_and_changed_outputs(tmp_path):
    path = save_realized(Outside(), tmp_path / "outside.pt")
    with pytest.raises(TopopruneError, match="outside topoprune., torch."):
        load_realized(path)
    assert isinstance(load_realized(path, trusted_modules=(Outside.__module__,)), Outside)
    (tmp_path / "bytes.pt").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(TopopruneError, match="not a readable saved model"):
        load_realized(tmp_path / "bytes.pt")
    with pytest.raises(TopopruneError, match="no saved model at"):
        load_realized(tmp_path / "none.pt")
    model = nn.Sequential(nn.Linear(3, 2))
    path = save_realized(model, tmp_path / "probe.pt", example_input=torch.randn(4, 3))
    payload = torch.load(path, weights_only=True)
    payload["modules"]["0"]["parameters"]["bias"] += 1.0  # the code "changed" since
    torch.save(payload, path)
    with pytest.raises(TopopruneError, match="does not reproduce the outputs saved with it"):
        load_realized(path)


def test_saving_refuses_what_it_cannot_rebuild_and_writes_nothing(tmp_path):
    odd = nn.Linear(2, 2)
    odd.callback = print
    with pytest.raises(TopopruneError, match="a builtin_function_or_method is neither"):
        save_realized(odd, tmp_path / "m.pt")
    hooked = nn.Linear(2, 2)
    hooked.register_forward_hook(lambda module, args, output: output)
    with pytest.raises(TopopruneError, match="neither a pruning mask nor a method"):
        save_realized(hooked, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_channel_pruned_model_is_rebuilt_from_its_state():
    model = create_model("resnet20", widths=[8] * 12, seed=0).eval()
    prune_model(model, "l1", 0.5, input_size=(3, 16, 16))
    narrow = model.layer1[0].conv1.out_channels
    assert narrow < 8
    prune.random_unstructured(model.layer2[0].conv1, "weight", 0.5)
    rebuilt = model_from_state(
        create_model("resnet20", widths=[8] * 12, seed=1), model.state_dict()
    )
    assert rebuilt.layer1[0].conv1.out_channels == narrow and rebuilt.layer1[0].bn1.num_features
    assert is_masked_conv(rebuilt.layer2[0].conv1)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model(x))


def test_realize_run_rebuilds_the_trained_model_and_realizes_it(tiny_rgp_run, tmp_path):
    model, input_size = trained_model(tiny_rgp_run)
    assert input_size == (1, 8, 8) and is_masked_conv(model.conv2) and not model.training
    realized = realize_run(tiny_rgp_run, batch=8, repeats=1, warmup=0)
    assert [layer.name for layer in realized.realize_report.layers][:1] == ["conv2"]
    x = run_example(input_size, 5, seed=3)
    with torch.no_grad():
        assert_close(realized(x), model(x))
    export_onnx(realized, x, tmp_path / "run.onnx")
    with torch.no_grad():
        assert_close(onnx_outputs(tmp_path / "run.onnx", x), model(x))


def test_a_folder_that_holds_no_finished_run_is_refused(tiny_rgp_run, tmp_path):
    with pytest.raises(TopopruneError, match="no such run folder"):
        trained_model(tmp_path / "none")
    with pytest.raises(TopopruneError, match=r"is not a run folder \(no run.json\)"):
        trained_model(tmp_path)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text((tiny_rgp_run / "run.json").read_text())
    with pytest.raises(TopopruneError, match="holds no finished training"):
        realize_run(unfinished)


def test_irregular_slice_and_sparse_linear_forms_export(tmp_path):
    generator = torch.Generator().manual_seed(0)
    conv, linear = nn.Conv2d(8, 8, 3, padding=1), nn.Linear(8 * 5 * 5, 10)
    keep = (torch.rand(8, 8, generator=generator) < 0.3)[:, :, None, None]
    prune.custom_from_mask(conv, "weight", keep.expand_as(conv.weight).float().contiguous())
    prune.custom_from_mask(linear, "weight", (torch.rand(10, 200, generator=generator) < 0.1))
    model = nn.Sequential(
        SliceSparseConv2d.from_masked(conv),
        nn.ReLU(),
        nn.Flatten(),
        SparseLinear.from_masked(linear),
    ).eval()
    x = torch.randn(3, 8, 5, 5, generator=generator)
    report = export_onnx(model, x, tmp_path / "irregular.onnx")
    assert report.relative_diff is not None and report.relative_diff < 1e-5
