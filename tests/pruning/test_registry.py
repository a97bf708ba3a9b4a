"""The method registry: options checked against their dataclass, throwaway methods of every
protocol run through prune(), the CLI and the bench, and no method named in the shared code."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from topoprune.cli import main
from topoprune.errors import TopopruneError
from topoprune.experiments.bench import run_bench
from topoprune.models import create_model
from topoprune.pruning import (
    Pruning,
    list_methods,
    option,
    prune,
    register_method,
    unregister_method,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "topoprune"


@dataclass(frozen=True)
class KeepOptions:
    share: float = option(0.5, "fraction of every masked layer's weights kept from the front")


def _front_masks(model, share, layers):
    masks = {}
    for layer in layers:
        weight = layer.module.weight
        flat = torch.zeros(weight.numel(), dtype=torch.bool)
        flat[: max(1, round(share * weight.numel()))] = True
        masks[layer.name] = flat.view_as(weight)
    return masks


@pytest.fixture
def throwaway():
    """Three methods registered from outside the package, one per protocol."""

    @register_method("test-front", protocol="at-init", options=KeepOptions)
    def front(model, sparsity, options, context):
        """Keep the first weights of every layer (a test method)."""
        return Pruning(masks=_front_masks(model, options.share * (1 - sparsity), context.layers))

    @register_method("test-after", protocol="after-training")
    def after(model, sparsity, options, context):
        """Keep the first weights of a trained model (a test method)."""
        return Pruning(masks=_front_masks(model, 1 - sparsity, context.layers))

    @register_method("test-halve", protocol="search")
    def halve(model, sparsity, options, context):
        """Halve every width (a test search)."""
        return Pruning(widths=[max(1, w // 2) for w in model.widths], metrics={"searched": 1})

    yield ("test-front", "test-after", "test-halve")
    for name in ("test-front", "test-after", "test-halve"):
        unregister_method(name)


def test_every_protocol_runs_through_prune(throwaway):
    model = create_model("lenet5", in_channels=1, widths=[4, 8, 16, 8])
    result = prune(model, "test-front", 0.5, share=0.5, input_size=(1, 8, 8))
    assert int(model.conv2.weight_mask.sum()) == round(0.25 * model.conv2.weight.numel())
    assert result.record["call"]["share"] == 0.5 and result.protocol == "at-init"
    assert result.metrics["params_reduction"] > 0

    model = create_model("lenet5", in_channels=1, widths=[4, 8, 16, 8])
    result = prune(model, "test-halve", 0.5, input_size=(1, 8, 8))
    assert result.widths == [2, 4, 8, 4] and result.protocol == "search"
    assert not any(hasattr(m, "weight_mask") for m in model.modules())  # the model is untouched
    narrow = create_model("lenet5", in_channels=1, widths=[2, 4, 8, 4])
    assert result.metrics["params"] == sum(p.numel() for p in narrow.parameters())


def test_list_methods_shows_every_method_with_protocol_and_options(throwaway, capsys):
    with pytest.raises(SystemExit) as done:
        main(["prune", "--list-methods"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    for method in list_methods():
        assert f"{method.name}  [{method.protocol}]" in printed
    assert "test-front  [at-init]  Keep the first weights" in printed
    assert "--share (float, default 0.5): fraction of every masked layer" in printed
    assert "test-halve  [search]" in printed and "test-after  [after-training]" in printed


def test_a_one_step_bench_runs_every_protocol(throwaway, tmp_path):
    config = {
        "model": "lenet5",
        "widths": [4, 8, 16, 8],
        "dataset": "digits",
        "training": {"epochs": 2, "max_steps_per_epoch": 1, "batch_size": 16},
        "methods": ["dense", {"name": "test-front", "share": 0.8}, "test-after", "test-halve"],
        "sparsities": [0.5],
        "seeds": 1,
        "latency_batch": None,
    }
    result = run_bench(config, tmp_path, progress=False)
    rows = {row["label"]: row for row in result.rows}
    assert rows["test-front"]["protocol"] == "at-init"
    assert rows["test-after"]["protocol"] == "after-training"
    assert rows["test-halve"]["protocol"] == "search" and rows["test-halve"]["search_s"] >= 0
    narrow = create_model("lenet5", in_channels=1, widths=[2, 4, 8, 4])
    assert rows["test-halve"]["params"] == sum(p.numel() for p in narrow.parameters())
    assert rows["test-front"]["params"] < rows["dense"]["params"]
    assert (tmp_path / "runs" / "test-after_s0.5_seed0" / "pretrain" / "checkpoint.pt").exists()
    record = json.loads((tmp_path / "runs" / "test-front_s0.5_seed0" / "config.json").read_text())
    assert record["pruning"]["call"]["share"] == 0.8


def test_the_cli_prunes_with_a_throwaway_method(throwaway, tmp_path, capsys):
    argv = ["prune", "--method", "test-front", "--sparsity", "0.5", "--share", "0.4"]
    argv += ["--model", "lenet5", "--dataset", "digits", "--max-steps", "1", "--no-progress"]
    argv += ["--latency-batch", "2", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["pruning"]["record"]["call"]["share"] == 0.4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"nodez": 8}, "rgp has no option 'nodez'; its options: seed, layers, exclude, nodes"),
        ({"nodes": "8"}, "rgp option 'nodes' must be int | null, got '8'"),
        ({"nodes": True}, "rgp option 'nodes' must be int | null, got True"),
        ({"strategy": "guess"}, "rgp option 'strategy' must be one of anneal, greedy, rgp"),
        ({"layers": "conv*"}, "rgp option 'layers' must be list of str | null"),
        ({"seed": 1.5}, "rgp option 'seed' must be int"),
    ],
)
def test_unknown_or_ill_typed_options_are_one_line(options, message):
    with pytest.raises(TopopruneError) as caught:
        prune(create_model("resnet20"), "rgp", 0.75, **options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_method_names_the_registered_ones():
    with pytest.raises(
        TopopruneError,
        match="unknown pruning method 'magic': use one of exp, global-magnitude, graphpruning",
    ):
        prune(create_model("resnet20"), "magic", 0.5)


def test_registering_twice_or_clashing_with_a_common_option_is_refused(throwaway):
    with pytest.raises(TopopruneError, match="already registered"):
        register_method("test-front", protocol="at-init")(lambda *args: Pruning())

    @dataclass(frozen=True)
    class Clash:
        seed: int = option(1, "a second seed")

    with pytest.raises(TopopruneError, match="repeats a common or protocol option"):
        register_method("test-clash", protocol="at-init", options=Clash)
    with pytest.raises(TopopruneError, match="unknown protocol"):
        register_method("test-proto", protocol="during-training")


def _string_constants(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


@pytest.mark.parametrize(
    "relative",
    [
        "pruning/api.py",
        "pruning/registry.py",
        "pruning/match.py",
        "cli/prune.py",
        "cli/bench.py",
        "experiments/bench.py",
        "experiments/bench_config.py",
        "experiments/bench_report.py",
        "experiments/protocols.py",
    ],
)
def test_the_shared_code_names_no_method(relative):
    names = {method.name for method in list_methods()}
    assert not names & _string_constants(SRC / relative)


def test_a_method_may_need_the_input_size():
    with pytest.raises(TopopruneError, match="l1 needs the input size"):
        prune(create_model("lenet5", in_channels=1), "l1", 0.5)
