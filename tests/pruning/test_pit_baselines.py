"""The field's standard baselines: SNIP, GraSP, SynFlow (at initialisation) and global magnitude
(after training), each score checked against a hand computation on a tiny network, their exact
counts, granularities, ``like`` and layer selection, and each run through ``prune`` on ResNet-20."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from topoprune.data import load_dataset
from topoprune.errors import TopopruneError
from topoprune.models import create_model
from topoprune.pruning import get_method, prunable_layers, prune
from topoprune.pruning.baselines import kept_units
from topoprune.pruning.grasp import grasp_scores
from topoprune.pruning.saliency import balanced_batches, training_batches, unit_scores
from topoprune.pruning.snip import snip_scores
from topoprune.pruning.synflow import synflow_schedule, synflow_scores

AT_INIT = ("snip", "grasp", "synflow")
SMALL = {"snip": {"samples": 8}, "grasp": {"samples_per_class": 2}, "synflow": {}}


class MLP(nn.Module):
    """12 → 6 → 5 → 3: fc1 and fc2 are masked, fc3 is the (dense) classifier."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 6), nn.Linear(6, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class Convs(nn.Module):
    """conv1 (dense, first) → conv2 → conv3 (masked, 3×3) → classifier."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 5, 3, padding=1)
        self.conv3 = nn.Conv2d(5, 6, 3, padding=1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv3(F.relu(self.conv2(F.relu(self.conv1(x))))))
        return self.fc(x.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def tiny():
    """Three classes of 3×2×2 images: 12 inputs for the MLP."""
    return load_dataset("synthetic", num_classes=3, image_size=2, size=60)


@pytest.fixture(scope="module")
def small():
    return load_dataset("synthetic", num_classes=3, image_size=4, size=60)


@pytest.fixture(scope="module")
def cifar_like():
    return load_dataset("synthetic", size=120, image_size=8)


def _hand_gradients(model: MLP, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """∂ mean-CE / ∂W of fc1 and fc2, by the chain rule written out."""
    w1, b1 = model.fc1.weight.detach(), model.fc1.bias.detach()
    w2, b2 = model.fc2.weight.detach(), model.fc2.bias.detach()
    w3, b3 = model.fc3.weight.detach(), model.fc3.bias.detach()
    x = x.flatten(1).to(w1.dtype)
    a1 = x @ w1.T + b1
    h1 = a1.clamp(min=0)
    a2 = h1 @ w2.T + b2
    h2 = a2.clamp(min=0)
    logits = h2 @ w3.T + b3
    delta3 = (logits.softmax(1) - F.one_hot(y, 3).to(w1.dtype)) / len(y)
    delta2 = (delta3 @ w3) * (a2 > 0)
    delta1 = (delta2 @ w2) * (a1 > 0)
    return {"fc1": delta1.T @ x, "fc2": delta2.T @ h1}


def _top_masks(scores: dict[str, torch.Tensor], kept: int) -> dict[str, torch.Tensor]:
    """Reference global selection: sort every score, keep the ``kept`` highest."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[flat.argsort(descending=True)[:kept]] = True
    parts = keep.split([s.numel() for s in scores.values()])
    return {name: part.view_as(s) for (name, s), part in zip(scores.items(), parts, strict=True)}


def _kept(masks: dict[str, torch.Tensor], granularity: str = "weight") -> int:
    return sum(kept_units(mask, granularity) for mask in masks.values())


def _assert_whole_slices(mask: torch.Tensor) -> None:
    slices = mask.flatten(2)
    assert bool((slices.all(dim=2) | ~slices.any(dim=2)).all())


# ----------------------------------------------------------------------------------------- SNIP


def test_snip_scores_are_gradient_times_weight_by_hand(tiny):
    model = MLP().double()
    x, y = training_batches(tiny, 1, 8, seed=0)[0]
    scores = snip_scores(model, prunable_layers(model), [(x.double(), y)])
    grads = _hand_gradients(model, x.double(), y)
    for name in ("fc1", "fc2"):
        weight = getattr(model, name).weight.detach()
        torch.testing.assert_close(scores[name], (grads[name] * weight).abs())


def test_snip_keeps_the_global_top_on_its_seeded_batch(tiny):
    model = MLP()
    result = prune(model, "snip", 0.6, data=tiny, samples=8, seed=4)
    batch = training_batches(tiny, 1, 8, seed=4)[0]
    grads = _hand_gradients(MLP(), *batch)
    hand = {n: (grads[n] * getattr(MLP(), n).weight.detach()).abs() for n in ("fc1", "fc2")}
    assert _kept(result.masks) == round(0.4 * (72 + 30))
    expected = _top_masks(hand, round(0.4 * 102))
    for name, mask in expected.items():
        assert torch.equal(result.masks[name], mask)
    assert result.protocol == "at-init" and result.metrics["samples"] == 8


def test_snip_is_seeded(tiny):
    first = prune(MLP(), "snip", 0.7, data=tiny, samples=4, seed=1)
    again = prune(MLP(), "snip", 0.7, data=tiny, samples=4, seed=1)
    other = prune(MLP(), "snip", 0.7, data=tiny, samples=4, seed=2)
    assert all(torch.equal(first.masks[n], again.masks[n]) for n in first.masks)
    assert not all(torch.equal(first.masks[n], other.masks[n]) for n in first.masks)
    one, two = training_batches(tiny, 2, 4, seed=1)
    assert not torch.equal(one[0], two[0])  # two batches, no sample twice
    assert torch.equal(training_batches(tiny, 2, 4, seed=1)[1][0], two[0])


def test_snip_several_batches_sum_their_gradients(tiny):
    model = MLP().double()
    batches = [(x.double(), y) for x, y in training_batches(tiny, 3, 5, seed=0)]
    scores = snip_scores(model, prunable_layers(model), batches)
    grads = [_hand_gradients(model, x, y) for x, y in batches]
    total = sum(g["fc2"] for g in grads)
    torch.testing.assert_close(scores["fc2"], (total * model.fc2.weight.detach()).abs())


# ---------------------------------------------------------------------------------------- GraSP


def _hand_hessian_scores(model: MLP, halves, temperature: float) -> dict[str, torch.Tensor]:
    """−w ⊙ (H g) with H the explicit Hessian over all three weights (biases fixed) of the sum of
    the halves' mean losses at ``logits / temperature``, the forward written out."""
    shapes = [model.fc1.weight.shape, model.fc2.weight.shape, model.fc3.weight.shape]
    sizes = [s.numel() for s in shapes]
    biases = [model.fc1.bias.detach(), model.fc2.bias.detach(), model.fc3.bias.detach()]
    theta = torch.cat([m.weight.detach().flatten() for m in (model.fc1, model.fc2, model.fc3)])

    def loss(flat: torch.Tensor) -> torch.Tensor:
        w1, w2, w3 = (p.view(s) for p, s in zip(flat.split(sizes), shapes, strict=True))
        total = flat.new_zeros(())
        for x, y in halves:
            h = (x.flatten(1) @ w1.T + biases[0]).clamp(min=0)
            h = (h @ w2.T + biases[1]).clamp(min=0)
            total = total + F.cross_entropy((h @ w3.T + biases[2]) / temperature, y)
        return total

    point = theta.clone().requires_grad_(True)
    g = torch.autograd.grad(loss(point), point)[0]
    hessian = torch.autograd.functional.hessian(loss, theta)
    score = (-theta * (hessian @ g)).split(sizes)
    return {"fc1": score[0].view(shapes[0]), "fc2": score[1].view(shapes[1])}


@pytest.mark.parametrize("temperature", [1.0, 200.0])
def test_grasp_scores_are_minus_w_times_hessian_gradient(tiny, temperature):
    model = MLP().double()
    x, y = balanced_batches(tiny, 1, 3, seed=0)[0]
    x = x.double()
    halves = [(x[:4], y[:4]), (x[4:], y[4:])]  # 9 samples: the published [:N//2], [N//2:]
    scores = grasp_scores(model, prunable_layers(model), [(x, y)], temperature)
    hand = _hand_hessian_scores(model, halves, temperature)
    for name in ("fc1", "fc2"):
        scale = hand[name].abs().max()
        torch.testing.assert_close(scores[name], hand[name], rtol=1e-7, atol=1e-9 * scale)


def test_grasp_batches_are_class_balanced_and_ordered_by_class(tiny):
    batches = balanced_batches(tiny, 2, 3, seed=5)
    for _, labels in batches:
        assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert not torch.equal(batches[0][0], batches[1][0])
    with pytest.raises(TopopruneError, match="lower samples_per_class"):
        balanced_batches(tiny, 1, 50, seed=0, method="grasp")


def test_grasp_removes_the_highest_scores_exactly(tiny):
    model = MLP()
    result = prune(model, "grasp", 0.5, data=tiny, samples_per_class=3, seed=2)
    scores = grasp_scores(MLP(), prunable_layers(MLP()), balanced_batches(tiny, 1, 3, seed=2))
    assert _kept(result.masks) == 51
    kept = torch.cat([scores[n][result.masks[n]] for n in scores])
    removed = torch.cat([scores[n][~result.masks[n]] for n in scores])
    assert kept.max() <= removed.min()  # one global threshold, the highest removed
    assert result.metrics["temperature"] == 200.0 and result.metrics["samples"] == 9


# -------------------------------------------------------------------------------------- SynFlow


def _hand_flow(model: MLP, masks: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """SynFlow's |∂R/∂w ⊙ w| for the linearised MLP on a ones input, written out in float64:
    every entry non-negative, R = 1ᵀ(|W3| a2 + |b3|), a2 = |W2| a1 + |b2|, a1 = |W1| 1 + |b1|.
    """
    masks = masks or {}
    w = {
        n: getattr(model, n).weight.detach().double().abs() * masks.get(n, 1.0)
        for n in ("fc1", "fc2", "fc3")
    }
    b = {n: getattr(model, n).bias.detach().double().abs() for n in ("fc1", "fc2", "fc3")}
    a1 = w["fc1"].sum(1) + b["fc1"]
    c3 = w["fc3"].sum(0)  # ∂R/∂a2
    c2 = c3 @ w["fc2"]  # ∂R/∂a1
    return {"fc1": w["fc1"] * c2[:, None], "fc2": w["fc2"] * torch.outer(c3, a1)}


def test_synflow_scores_are_the_linearised_path_products(tiny):
    model = MLP()
    layers = prunable_layers(model)
    scores = synflow_scores(model, layers, (3, 2, 2))
    hand = _hand_flow(model)
    for name in ("fc1", "fc2"):
        assert scores[name].dtype == torch.float64
        torch.testing.assert_close(scores[name], hand[name])
    masks = {"fc1": torch.rand(6, 12) > 0.5, "fc2": torch.rand(5, 6) > 0.3}
    masked = synflow_scores(model, layers, (3, 2, 2), masks)
    for name, value in _hand_flow(model, {k: v.double() for k, v in masks.items()}).items():
        torch.testing.assert_close(masked[name], value)


def test_synflow_iterates_with_masks_applied_between_rounds():
    model = MLP()
    result = prune(model, "synflow", 0.75, iterations=2, input_size=(3, 2, 2))
    first_kept, last_kept = round(102 * 0.25**0.5), round(0.25 * 102)
    assert result.metrics["kept_units"] == [first_kept, last_kept]
    first = _top_masks(_hand_flow(MLP()), first_kept)
    again = _hand_flow(MLP(), {n: m.double() for n, m in first.items()})
    again = {n: s.masked_fill(~first[n], -1.0) for n, s in again.items()}  # removed stay removed
    expected = _top_masks(again, last_kept)
    for name, mask in expected.items():
        assert torch.equal(result.masks[name], mask)
        assert not bool((mask & ~first[name]).any())


def test_synflow_schedule_is_exponential_in_the_kept_fraction():
    assert synflow_schedule(1000, 10, 4) == [316, 100, 32, 10]
    assert synflow_schedule(102, 26, 1) == [26]
    model = create_model("resnet20")
    result = prune(model, "synflow", 0.9, iterations=5, input_size=(3, 8, 8))
    total = sum(layer.module.weight.numel() for layer in prunable_layers(create_model("resnet20")))
    kept = round(0.1 * total)
    density = kept / total  # the final kept fraction, round(0.1 · total) / total
    assert result.metrics["kept_units"] == [round(total * density ** (i / 5)) for i in range(1, 6)]
    assert _kept(result.masks) == kept


def test_synflow_computes_in_double_where_float32_overflows():
    torch.manual_seed(0)
    deep = nn.Sequential(*[m for _ in range(30) for m in (nn.Linear(64, 64), nn.ReLU())])
    deep.append(nn.Linear(64, 2))
    with torch.no_grad():
        for module in deep:
            if isinstance(module, nn.Linear):
                module.weight.fill_(1.0)
    with torch.no_grad():
        assert torch.isinf(deep(torch.ones(1, 64))).all()  # 64^31 overflows float32
    scores = synflow_scores(deep, prunable_layers(deep), (64,))
    assert all(bool(torch.isfinite(s).all() and (s > 0).all()) for s in scores.values())


def test_synflow_is_data_free_and_needs_the_input_size():
    with pytest.raises(TopopruneError, match="synflow needs the input size"):
        prune(MLP(), "synflow", 0.5)


# ----------------------------------------------------------------------- granularity and like


@pytest.mark.parametrize("method", AT_INIT)
def test_kernel_granularity_keeps_the_best_whole_slices(small, method):
    model = Convs()
    result = prune(
        model, method, 0.6, data=small, input_size=(3, 4, 4), granularity="kernel", **SMALL[method]
    )
    assert sorted(result.masks) == ["conv2", "conv3"]
    for mask in result.masks.values():
        _assert_whole_slices(mask)
    assert _kept(result.masks, "kernel") == round(0.4 * (4 * 5 + 5 * 6))
    if method == "snip":  # one global threshold on the slices' summed scores
        layers = prunable_layers(Convs())
        scores = snip_scores(Convs(), layers, training_batches(small, 1, 8, seed=0))
        sums = {n: unit_scores(s, "kernel") for n, s in scores.items()}
        alive = {n: result.masks[n].flatten(2).any(2).flatten() for n in sums}
        kept = torch.cat([sums[n][alive[n]] for n in sums])
        removed = torch.cat([sums[n][~alive[n]] for n in sums])
        assert kept.min() >= removed.max()


@pytest.mark.parametrize("granularity", ["weight", "kernel"])
@pytest.mark.parametrize("method", AT_INIT)
def test_like_copies_the_reference_per_layer_counts(cifar_like, method, granularity):
    lattice = prune(create_model("resnet20"), "lattice", 0.75, nodes=16)
    options = {"iterations": 3} if method == "synflow" else SMALL[method]
    result = prune(
        create_model("resnet20"),
        method,
        0.75,
        data=cifar_like,
        input_size=(3, 8, 8),
        like="lattice",
        like_options={"nodes": 16},
        granularity=granularity,
        **options,
    )
    assert result.masks.keys() == lattice.masks.keys()
    for name, mask in lattice.masks.items():
        assert kept_units(result.masks[name], granularity) == kept_units(mask, granularity)
        if granularity == "kernel":
            _assert_whole_slices(result.masks[name])


def test_like_picks_by_score_within_each_layer(tiny, tmp_path):
    reference = prune(MLP(), "random", 0.5, seed=9)  # fc1 and fc2 keep half each
    reference.save(tmp_path / "random.pt")
    result = prune(MLP(), "snip", 0.5, data=tiny, samples=8, like=str(tmp_path / "random.pt"))
    scores = snip_scores(MLP(), prunable_layers(MLP()), training_batches(tiny, 1, 8, seed=0))
    for name, mask in result.masks.items():
        assert int(mask.sum()) == int(reference.masks[name].sum())
        assert scores[name][mask].min() >= scores[name][~mask].max()


@pytest.mark.parametrize("method", AT_INIT)
def test_a_method_cannot_copy_itself(method):
    with pytest.raises(TopopruneError, match="cannot copy itself"):
        prune(MLP(), method, 0.5, like=method)


@pytest.mark.parametrize("method", [*AT_INIT, "global-magnitude"])
def test_layer_selection_is_honoured(cifar_like, method):
    options = {"iterations": 2} if method == "synflow" else SMALL.get(method, {})
    result = prune(
        create_model("resnet20"),
        method,
        0.8,
        data=cifar_like,
        input_size=(3, 8, 8),
        layers=["layer2.*", "layer3.*"],
        exclude=["*.conv2"],
        **options,
    )
    assert result.masks and all(
        name.startswith(("layer2.", "layer3.")) and not name.endswith("conv2")
        for name in result.masks
    )
    model = create_model("resnet20")
    total = sum(dict(model.named_modules())[n].weight.numel() for n in result.masks)
    assert _kept(result.masks) == round(0.2 * total)


def test_data_methods_say_they_need_data():
    with pytest.raises(TopopruneError, match="pass data=splits"):
        prune(MLP(), "snip", 0.5)
    with pytest.raises(TopopruneError, match="pass data=splits"):
        prune(MLP(), "grasp", 0.5)
    with pytest.raises(TopopruneError, match="must be positive"):
        prune(MLP(), "synflow", 0.5, iterations=0, input_size=(3, 2, 2))


# ------------------------------------------------------------------------ global magnitude


def test_global_magnitude_keeps_the_largest_weights_over_all_layers():
    model = MLP()
    weights = {n: getattr(model, n).weight.detach().abs().clone() for n in ("fc1", "fc2")}
    result = prune(model, "global-magnitude", 0.7)
    assert get_method("global-magnitude").protocol == "after-training"
    assert result.protocol == "after-training"
    expected = _top_masks(weights, round(0.3 * 102))
    for name, mask in expected.items():
        assert torch.equal(result.masks[name], mask)
    # densities differ by layer: one global threshold, not one per layer
    assert result.masks["fc1"].float().mean() != result.masks["fc2"].float().mean()


def test_global_magnitude_kernel_ranks_slices_by_l1_and_reads_masks_as_zero():
    model = Convs()
    l1 = {n: getattr(model, n).weight.detach().abs().sum(dim=(2, 3)) for n in ("conv2", "conv3")}
    result = prune(model, "global-magnitude", 0.5, granularity="kernel")
    expected = _top_masks(l1, 25)
    for name, mask in result.masks.items():
        _assert_whole_slices(mask)
        assert torch.equal(mask[:, :, 0, 0], expected[name])
    again = prune(model, "global-magnitude", 0.5, granularity="kernel")  # on the masked model
    assert _kept(again.masks, "kernel") == 25
    for name, mask in again.masks.items():
        assert not bool((mask & ~result.masks[name]).any())  # what was removed is |w| = 0


# --------------------------------------------------------------------------------- ResNet-20


@pytest.mark.parametrize("method", [*AT_INIT, "global-magnitude"])
def test_each_baseline_runs_through_prune_on_resnet20(cifar_like, method):
    options = {"iterations": 10} if method == "synflow" else SMALL.get(method, {})
    model = create_model("resnet20")
    result = prune(model, method, 0.9, data=cifar_like, input_size=(3, 8, 8), **options)
    layers = prunable_layers(create_model("resnet20"))
    assert sorted(result.masks) == sorted(layer.name for layer in layers)
    total = sum(layer.module.weight.numel() for layer in layers)
    assert _kept(result.masks) == round(0.1 * total)
    assert 0.85 < result.metrics["params_reduction"] < 0.9
    assert all(hasattr(m, "weight_mask") for n, m in model.named_modules() if n in result.masks)
    assert result.record["call"]["granularity"] == "weight"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", [*AT_INIT, "global-magnitude"])
def test_each_baseline_prunes_a_model_on_the_gpu(cifar_like, method):
    options = {"iterations": 5} if method == "synflow" else SMALL.get(method, {})
    model = create_model("resnet20").cuda()
    result = prune(model, method, 0.9, data=cifar_like, input_size=(3, 8, 8), **options)
    total = sum(layer.module.weight.numel() for layer in prunable_layers(model))
    assert _kept(result.masks) == round(0.1 * total)
    assert all(mask.device.type == "cpu" for mask in result.masks.values())
    assert model(torch.ones(2, 3, 8, 8, device="cuda")).isfinite().all()
