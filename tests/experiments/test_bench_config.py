"""Benchmark configurations: shipped files load, mistakes are one clear line, jobs add up."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.cli import main
from topoprune.errors import TopopruneError
from topoprune.experiments.bench_config import bench_methods, load_config
from topoprune.experiments.protocols import phase
from topoprune.models import create_model
from topoprune.pruning import pruning_stages

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def tiny(**changes):
    """A valid configuration, with ``changes`` on top."""
    base = {
        "model": "lenet5",
        "dataset": "digits",
        "training": {"epochs": 2, "max_steps_per_epoch": 2},
        "methods": ["dense", {"name": "rgp", "nodes": 8, "steps": 50}, "l1"],
        "sparsities": [0.5],
        "seeds": 2,
    }
    return {**base, **changes}


def test_the_shipped_configs_are_all_there():
    names = {path.name for path in CONFIGS}
    assert {
        "quick-mnist5k.yaml",
        "cifar10-resnet56.yaml",
        "cifar10-vgg16.yaml",
        "imagenet-resnet50.yaml",
        "smallworld-mnist5k.yaml",
        "smallworld-cifar10-vgg16.yaml",
        "compare-mnist5k.yaml",
    } <= names


@pytest.mark.parametrize("name", ["quick-mnist5k.yaml", "compare-mnist5k.yaml"])
def test_the_comparisons_run_every_method_at_true_params_points(name):
    config = load_config(Path(__file__).parents[2] / "configs" / name)
    assert {m.name for m in config.methods} == set(bench_methods())
    assert config.match == "params" and 0.9 in config.sparsities and len(config.seeds) == 3
    assert config.reference == "random"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    names = [m.name for m in config.methods]
    own = path.name.split("-")[0]
    if own in ("exp", "graphpruning"):  # one method's settings, its own baselines or none
        assert own in names and names.count("dense") == (names[:1] == ["dense"])
    else:
        assert names[:1] == ["dense"]
        compared = {"random", "rgp", "smallworld"}
        if not path.name.startswith("smallworld"):
            compared |= {"lattice", "random-regular", "l1"}
        assert compared <= set(names)
    dense = "dense" in names
    per_sparsity = len(config.methods) - dense
    assert len(config.jobs()) == len(config.seeds) * (dense + per_sparsity * len(config.sparsities))


# the published EXP settings: (dense epochs of the first run, fine-tuning milestones per stage)
EXP_PUBLISHED = {
    "exp-cifar10-resnet56.yaml": (200, (15, 25)),
    "exp-cifar10-resnet110.yaml": (200, (15, 25)),
    "exp-cifar10-vgg16.yaml": (200, (15, 25)),
    "exp-imagenet-resnet50.yaml": (90, None),
}


@pytest.mark.parametrize("name", sorted(EXP_PUBLISHED))
def test_the_exp_configs_give_the_published_schedule(name):
    config = load_config(CONFIGS[0].parent / name)
    training = config.training
    dense_epochs, milestones = EXP_PUBLISHED[name]
    classes = 1000 if config.dataset == "imagefolder" else 10
    model = create_model(config.model, num_classes=classes, in_channels=3)
    method = config.methods[0]
    stages = pruning_stages(model, "exp", 0.0, **method.options)
    assert training.epochs - stages.total_epochs == dense_epochs
    assert [round(m * dense_epochs / training.epochs) for m in training.milestones] in (
        [100, 167],
        [30, 60],
    )
    if milestones is not None:
        assert stages.restart and stages.epochs == 30
        assert phase(training, stages.epochs, 0.01).milestones == milestones


def test_the_published_settings_are_the_published_ones():
    cifar = load_config(CONFIGS[0].parent / "cifar10-resnet56.yaml").training
    assert (cifar.epochs, cifar.batch_size, cifar.lr, cifar.momentum) == (100, 256, 0.1, 0.9)
    assert (cifar.weight_decay, cifar.schedule) == (5e-4, "cosine")
    imagenet = load_config(CONFIGS[0].parent / "imagenet-resnet50.yaml").training
    assert (imagenet.epochs, imagenet.lr, imagenet.weight_decay) == (100, 0.1, 1e-4)
    assert (imagenet.schedule, tuple(imagenet.milestones), imagenet.gamma) == (
        "multistep",
        (30, 60, 90),
        0.1,
    )
    assert imagenet.label_smoothing == 0.1


def test_a_config_round_trips_through_its_dict():
    config = load_config(tiny(widths=[8, 16, 32, 16], latency_batch=None))
    assert load_config(config.to_dict()) == config
    assert [job.folder for job in config.jobs()] == [
        "dense_seed0",
        "dense_seed1",
        "rgp_s0.5_seed0",
        "rgp_s0.5_seed1",
        "l1_s0.5_seed0",
        "l1_s0.5_seed1",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "adam"}, "unknown key 'optimizer' in the config"),
        ({"reference": "rnadom"}, "reference 'rnadom' must be the label of a pruning method"),
        ({"reference": "dense"}, "reference 'dense' must be the label of a pruning method"),
        ({"match_tolerance": 1.5}, "match_tolerance must lie in (0, 1)"),
        ({"model": "alexnet"}, "unknown model 'alexnet'"),
        ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
        ({"methods": ["dense", "magic"]}, "unknown method 'magic'"),
        ({"methods": []}, "methods must be a non-empty list"),
        ({"methods": ["random", "random"]}, "share the label 'random'"),
        (
            {"methods": [{"name": "rgp", "nodez": 8}]},
            "method rgp: rgp has no option 'nodez'; its options: seed",
        ),
        (
            {"methods": [{"name": "rgp", "nodes": "8"}]},
            "method rgp: rgp option 'nodes' must be int | null, got '8'",
        ),
        ({"methods": [{"name": "dense", "nodes": 8}]}, "unknown key 'nodes' in method dense"),
        ({"methods": [{"name": "rgp", "label": "a/b"}]}, "label 'a/b' of rgp"),
        (
            {"methods": [{"name": "rgp", "nodes": 8}], "sparsities": [0.875]},
            "method rgp at sparsity 0.875: sparsity 0.875 leaves degree 1 on 8 nodes",
        ),
        (
            {"methods": [{"name": "rgp", "strategy": "guess"}]},
            "option 'strategy' must be one of anneal, greedy, rgp",
        ),
        (
            {"methods": [{"name": "l1", "target": "flops"}]},
            "l1 option 'target' must be one of macs, params, got 'flops'",
        ),
        ({"training": {"epochs": 1}}, "method l1: an after-training method trains dense for floor"),
        ({"sparsities": [1.0]}, "every sparsity must lie in (0, 1)"),
        ({"sparsities": [0]}, "every sparsity must lie in (0, 1)"),
        ({"sparsities": ["half"]}, "every sparsity must lie in (0, 1)"),
        ({"sparsities": [0.5, 0.5]}, "sparsities repeat a value"),
        ({"sparsities": []}, "sparsities must be a non-empty list"),
        ({"seeds": 0}, "seeds must be a count >= 1"),
        ({"seeds": [1, 1]}, "seeds must be a count >= 1"),
        ({"training": {"seed": 3}}, "training.seed is not used"),
        ({"training": {"epochs": 2, "lrate": 0.1}}, "unknown key 'lrate' in training"),
        ({"training": {"epochs": "two"}}, "training.epochs must be of type int"),
        ({"training": {"epochs": 2, "lr": -1}}, "learning rate must be a finite number > 0"),
        ({"training": {"epochs": 2, "milestones": ["a"]}}, "every item of training.milestones"),
        ({"training": {"epochs": 2, "max_steps_per_epoch": 0}}, "max_steps_per_epoch must be"),
        ({"latency_batch": 0}, "latency_batch must be an integer >= 1 or null"),
        ({"widths": [8, -1]}, "widths must be a list of positive integers"),
    ],
)
def test_mistakes_raise_one_line_that_says_what_to_change(changes, message):
    with pytest.raises(TopopruneError) as caught:
        load_config(tiny(**changes))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_key_is_named():
    raw = tiny()
    del raw["sparsities"]
    with pytest.raises(TopopruneError, match="missing key 'sparsities'"):
        load_config(raw)


def test_files_that_are_not_configs_are_refused(tmp_path):
    with pytest.raises(TopopruneError, match="no bench config at"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [lenet5\n")
    with pytest.raises(TopopruneError, match="is not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- lenet5\n")
    with pytest.raises(TopopruneError, match="must hold a mapping"):
        load_config(listing)


def test_the_cli_exits_2_and_writes_nothing_on_a_bad_config(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("model: lenet5\ndataset: digits\nmethods: [dense]\nsparsities: [1.5]\n")
    out = tmp_path / "out"
    assert main(["bench", "--config", str(config), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("topoprune: error: bench config: every sparsity")
        and error.count("\n") == 1
    )
    assert not out.exists()


@settings(max_examples=30, deadline=None)
@given(
    sparsities=st.lists(
        st.sampled_from([0.25, 0.5, 0.75, 0.875]), min_size=1, max_size=4, unique=True
    ),
    seeds=st.integers(1, 5),
    with_dense=st.booleans(),
)
def test_jobs_are_dense_once_per_seed_and_the_rest_per_sparsity(sparsities, seeds, with_dense):
    methods = (["dense"] if with_dense else []) + ["random", {"name": "rgp", "nodes": 16}]
    config = load_config(tiny(methods=methods, sparsities=sparsities, seeds=seeds))
    jobs = config.jobs()
    assert len(jobs) == seeds * (int(with_dense) + 2 * len(sparsities))
    assert len({job.folder for job in jobs}) == len(jobs) == len({job.key for job in jobs})
    assert all(job.sparsity == 0.0 for job in jobs if job.method.name == "dense")
    assert [job.seed for job in jobs[:seeds]] == list(range(seeds))
