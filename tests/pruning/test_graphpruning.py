"""GraphPruning: the layer graph of every zoo model, the GCN against a hand computation, the
PruningNet's generated weights, resumable training and search, and the method end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from topoprune.cli import main
from topoprune.data import load_dataset
from topoprune.errors import TopopruneError
from topoprune.measure import count
from topoprune.models import create_model
from topoprune.pruning import prune
from topoprune.pruning.graphpruning.gcn import GCN, normalized_adjacency
from topoprune.pruning.graphpruning.layer_graph import layer_graph
from topoprune.pruning.graphpruning.pruning_net import RATIOS, PruningNet, candidate_model
from topoprune.pruning.graphpruning.search import (
    MAX_DRAWS,
    SearchSpace,
    actor_critic,
    clamp_to_budget,
    evolution,
    random_search,
)
from topoprune.pruning.graphpruning.training import NetSchedule, train_pruning_net

ZOO = [
    "lenet5",
    "vgg11",
    "vgg16",
    "resnet20",
    "resnet56",
    "resnet110",
    "cresnet18",
    "resnet18",
    "resnet50",
    "mobilenetv2",
]


@pytest.mark.parametrize("name", ZOO)
def test_a_random_width_per_node_builds_a_model_that_runs(name):
    graph = layer_graph(name, in_channels=1 if name == "lenet5" else 3)
    ratios = np.random.default_rng(0).choice(RATIOS, size=len(graph.nodes))
    model = create_model(name, **graph.model_kwargs, widths=graph.widths(ratios))
    size = (1, 28, 28) if name == "lenet5" else (3, 32, 32)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, *size)).shape == (2, 10)
    covered = [name for node in graph.nodes for name in node.layers]
    assert len(covered) == len(set(covered))  # every layer belongs to one node at most
    assert all(node.layers for node in graph.nodes)


def test_residual_stages_are_one_node_with_shortcut_links():
    graph = layer_graph("cresnet18")
    stream = graph.nodes[1]  # the second stage's stream: convs, BN and the shortcut conv
    assert "layer2.0.shortcut.0" in stream.layers and "layer2.1.conv2" in stream.layers
    assert (0, 1) in graph.edges  # the shortcut conv reads the first stage
    undirected = {tuple(sorted(edge)) for edge in graph.edges}
    assert graph.adjacency().sum() == 2 * len(undirected)
    lenet = layer_graph("lenet5", in_channels=1)
    assert lenet.edges == [(0, 1), (1, 2), (2, 3)] and lenet.nodes[2].kind == "linear"


def test_the_gcn_matches_a_hand_computation():
    path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32)
    degree = np.array([2.0, 3.0, 2.0])  # of A + I
    expected = (path + np.eye(3)) / np.sqrt(degree[:, None] * degree[None, :])
    assert torch.allclose(normalized_adjacency(path), torch.tensor(expected, dtype=torch.float32))
    gcn = GCN(path, 3, 2, 4, 3, depth=2)
    features = torch.randn(3, 2)
    first, second = (layer.linear.weight.detach() for layer in gcn.layers)
    hidden = torch.relu(torch.tensor(expected).float() @ (features @ first.T))
    by_hand = torch.tensor(expected).float() @ (hidden @ second.T)
    assert torch.allclose(gcn(features), by_hand, atol=1e-6)
    alone = GCN(None, 3, 2, 4, 3)
    assert torch.equal(alone.layers[0].propagation, torch.eye(3))


def test_the_generated_model_computes_what_the_pruning_net_computes():
    graph = layer_graph("resnet20", in_channels=1)
    net = PruningNet(graph, seed=0).eval()
    ratios = torch.tensor(np.random.default_rng(1).choice(RATIOS, size=len(graph.nodes)))
    images = torch.randn(3, 1, 16, 16)
    model = candidate_model(net, ratios)
    net.model_for(net.widths(ratios)).load_state_dict(model.state_dict())  # same BN stats
    with torch.no_grad():
        assert torch.allclose(net(images, ratios), model.eval()(images), atol=1e-5)
    assert [m.out_channels for m in model.modules() if hasattr(m, "out_channels")][0] == (
        net.widths(ratios)[0]
    )


def test_the_heads_read_the_embeddings_and_the_aggregator_learns():
    graph = layer_graph("lenet5", in_channels=1)
    net = PruningNet(graph, seed=0)
    small, wide = torch.full((4,), 0.1), torch.full((4,), 1.0)
    first = net.parameters_for(small)["conv1.weight"]
    other = net.parameters_for(wide)["conv1.weight"][: first.shape[0]]
    assert not torch.allclose(first, other)  # the width changes the generated weights
    loss = net(torch.randn(2, 1, 28, 28), small).sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.aggregator.parameters())


def test_pruning_net_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    import topoprune.pruning.graphpruning.training as training

    splits = load_dataset("digits")
    graph = layer_graph("lenet5", in_channels=1)
    schedule = NetSchedule(epochs=2, batch_size=256)
    whole = PruningNet(graph, seed=0)
    train_pruning_net(whole, splits, schedule, seed=3)
    write = training.save_checkpoint

    def write_then_stop(path, state):  # the process dies once the first epoch is on disk
        write(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_pruning_net(PruningNet(graph, seed=0), splits, schedule, seed=3, folder=tmp_path)
    monkeypatch.setattr(training, "save_checkpoint", write)
    resumed = PruningNet(graph, seed=0)
    history = train_pruning_net(resumed, splits, schedule, seed=3, folder=tmp_path)
    assert [row["epoch"] for row in history] == [1, 2]
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def _toy_space(budget_share: float, folder=None, calls=None, kind="macs"):
    """LeNet-5's graph with a scorer that prefers wide later nodes (no PruningNet)."""
    graph = layer_graph("lenet5", in_channels=1)
    dense = getattr(count(create_model("lenet5", in_channels=1), (1, 28, 28)), kind)

    def scorer(ratios):
        if calls is not None:
            calls.append(ratios)
        return 0.0, float(ratios @ torch.tensor([1.0, 2.0, 3.0, 4.0]))

    return SearchSpace(graph, scorer, int(budget_share * dense), (1, 28, 28), folder, kind=kind)


def test_a_budget_random_draws_miss_is_met_by_scaling_a_draw_down():
    space = _toy_space(0.015, kind="params")  # no draw of 2,000 fits
    rng = np.random.default_rng(0)
    hits = sum(space.fits(rng.choice(RATIOS, size=space.nodes)) for _ in range(MAX_DRAWS))
    assert hits == 0
    best = evolution(space, population=6, iterations=3, parents=2, seed=0)
    assert all(space.counts(np.array(c.ratios)).params <= space.budget for c in space.history)
    assert best.val_acc > 0 and len(space.history) == 18
    with pytest.raises(TopopruneError, match="even 0.1 of every width exceeds"):
        _toy_space(0.001, kind="params").random_ratios(rng)


def test_every_search_stays_within_the_budget_and_evolution_beats_its_start():
    space = _toy_space(0.5)
    best = evolution(space, population=8, iterations=5, parents=3, seed=0)
    assert all(c.macs <= space.budget for c in space.history) and len(space.history) == 40
    first_generation = max(c.val_acc for c in space.history[:8])
    assert best.val_acc >= first_generation and space.best_so_far()[-1] == best.val_acc
    control = _toy_space(0.5)
    random_search(control, 40, seed=0)
    assert all(c.macs <= control.budget for c in control.history) and len(control.history) == 40
    agent = _toy_space(0.5)
    net = PruningNet(agent.graph, seed=0)
    actor_critic(agent, net, episodes=10, seed=0)
    assert all(c.macs <= agent.budget for c in agent.history)
    clamped = clamp_to_budget(agent, np.ones(4))
    assert agent.fits(clamped) and set(clamped.tolist()) <= set(RATIOS)


def test_a_repeated_search_reads_its_scores_back(tmp_path):
    calls: list = []
    first = evolution(_toy_space(0.5, tmp_path, calls), population=6, iterations=3, parents=2)
    scored = len(calls)
    again = evolution(_toy_space(0.5, tmp_path, calls), population=6, iterations=3, parents=2)
    assert len(calls) == scored and again == first
    lines = (tmp_path / "candidates.jsonl").read_text().splitlines()
    assert len(lines) == scored and json.loads(lines[0])["macs"] > 0


def test_uniform_scaling_is_the_widest_single_ratio_that_fits():
    model = create_model("lenet5", in_channels=1)
    result = prune(model, "graphpruning", macs=0.5, search="uniform", input_size=(1, 28, 28))
    ratio = result.metrics["ratios"][0]
    assert len(set(result.metrics["ratios"])) == 1
    assert result.metrics["macs_reduction"] >= 0.5
    wider = RATIOS[RATIOS.index(ratio) + 1]
    graph = layer_graph("lenet5", in_channels=1)
    wide = create_model("lenet5", in_channels=1, widths=graph.widths([wider] * 4))
    assert count(wide, (1, 28, 28)).macs > 0.5 * count(model, (1, 28, 28)).macs


def test_a_params_budget_counts_params_and_matches_a_true_params_point():
    from topoprune.pruning import match_sparsity

    model = create_model("lenet5", in_channels=1)
    dense = count(model, (1, 28, 28))
    found = match_sparsity(
        model, "graphpruning", "params", 0.8, {"search": "uniform"}, input_size=(1, 28, 28)
    )
    assert found.overrides == {"params": pytest.approx(0.2)}
    assert 0.8 <= found.achieved < 0.9
    result = prune(model, "graphpruning", params=0.2, search="uniform", input_size=(1, 28, 28))
    graph = layer_graph("lenet5", in_channels=1)
    assert result.metrics["budget_params"] == int(0.2 * dense.params)
    wider = RATIOS[RATIOS.index(result.metrics["ratios"][0]) + 1]
    wide = create_model("lenet5", in_channels=1, widths=graph.widths([wider] * 4))
    assert count(wide, (1, 28, 28)).params > 0.2 * dense.params
    with pytest.raises(TopopruneError, match="one budget: macs or params"):
        prune(model, "graphpruning", macs=0.5, params=0.5, input_size=(1, 28, 28))


def test_the_cli_searches_then_trains_the_narrower_model(tmp_path):
    out = tmp_path / "run"
    argv = ["prune", "--method", "graphpruning", "--macs", "0.5", "--model", "lenet5"]
    argv += ["--dataset", "digits", "--epochs", "1", "--max-steps", "1", "--no-progress"]
    argv += ["--population", "4", "--parents", "2", "--iterations", "2", "--net-epochs", "1"]
    argv += ["--recalibration-batches", "1", "--latency-batch", "2", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    widths = report["pruning"]["widths"]
    assert report["summary"]["model_kwargs"]["widths"] == widths
    assert report["summary"]["macs"] <= 0.5 * report["pruning"]["metrics"]["dense_macs"]
    assert (out / "search" / "candidates.jsonl").exists() and (
        out / "search" / "search.png"
    ).exists()
