"""L1 filter pruning: the highest-L1 channels survive, layers shrink for real, budgets hold."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.measure import count
from topoprune.models import create_model
from topoprune.pruning import prune
from topoprune.pruning.l1 import l1_prune, matched_budget


class TwoConvs(nn.Module):
    """conv1 → BN → ReLU → conv2 → spatial mean → fc; input (B, 1, 6, 6)."""

    def __init__(self, first: int = 8, second: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, first, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(first)
        self.conv2 = nn.Conv2d(first, second, 3, padding=1, bias=False)
        self.fc = nn.Linear(second, 3)
        self.classifier_name = "fc"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


def _graded() -> TwoConvs:
    """Channel i of conv1 and filter j of conv2 have L1 norms growing with i and j."""
    model = TwoConvs()
    with torch.no_grad():
        model.conv1.weight.copy_(torch.arange(1.0, 9.0).view(8, 1, 1, 1).expand(8, 1, 3, 3))
        model.conv2.weight.copy_(0.01 * torch.arange(1.0, 9.0).view(8, 1, 1, 1).expand(8, 8, 3, 3))
        model.fc.weight.fill_(0.5)
    return model


def test_the_channels_with_the_largest_l1_norm_survive():
    model, original = _graded(), _graded()
    budget = count(TwoConvs(4, 4), (1, 6, 6)).params
    result = l1_prune(model, 0.5, (1, 6, 6), target="params", budget=budget)
    assert result.widths == {"conv1": [8, 4], "conv2": [8, 4]}
    assert result.params == budget == sum(p.numel() for p in model.parameters())
    top = slice(4, 8)
    assert torch.equal(model.conv1.weight, original.conv1.weight[top])
    assert torch.equal(model.bn1.weight, original.bn1.weight[top])
    assert torch.equal(model.conv2.weight, original.conv2.weight[top][:, top])
    assert torch.equal(model.fc.weight, original.fc.weight[:, top])
    assert model(torch.randn(2, 1, 6, 6)).shape == (2, 3)


def _lenet5_params(widths: list[int], in_channels: int = 1, classes: int = 10) -> int:
    """LeNet-5's parameter count from its widths (5x5 convs, fc1 sees conv2 x 5 x 5)."""
    c1, c2, f1, f2 = widths
    return (
        (in_channels * 25 + 1) * c1
        + (c1 * 25 + 1) * c2
        + (c2 * 25 + 1) * f1
        + (f1 + 1) * f2
        + (f2 + 1) * classes
    )


@pytest.mark.parametrize("target", ["macs", "params"])
def test_lenet5_becomes_physically_narrower_within_the_budget(target):
    model = create_model("lenet5", in_channels=1, seed=0)
    budget = matched_budget(model, 0.75, (1, 28, 28), target)
    result = l1_prune(model, 0.75, (1, 28, 28), target=target)
    widths = [model.conv1.out_channels, model.conv2.out_channels]
    widths += [model.fc1.out_features, model.fc2.out_features]
    assert widths == [int(w * (1 - result.ratio)) for w in (6, 16, 120, 84)]
    assert result.params == _lenet5_params(widths) == count(model, (1, 28, 28)).params
    assert result.dense_params == _lenet5_params([6, 16, 120, 84]) == 61_706
    assert result.budget == budget and getattr(result, target) <= budget and result.reached
    assert not any(hasattr(m, "weight_mask") for m in model.modules())
    assert model.fc3.out_features == 10
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_the_matched_budget_is_what_the_mask_methods_keep():
    model = create_model("lenet5", in_channels=1, seed=0)
    masked = create_model("lenet5", in_channels=1, seed=0)
    prune(masked, "random", 0.5)
    assert matched_budget(model, 0.5, (1, 28, 28), "params") == count(masked, (1, 28, 28)).params
    assert matched_budget(model, 0.5, (1, 28, 28), "macs") == count(masked, (1, 28, 28)).macs
    assert not hasattr(model.conv2, "weight_mask")  # the model itself is left alone


def test_option_a_resnets_keep_their_residual_stream():
    model = create_model("resnet20", widths=[8, 8, 16, 8, 8, 8, 8, 8, 8, 16, 16, 16], seed=0)

    def widths(suffix: str) -> dict[str, int]:
        return {n: m.out_channels for n, m in model.named_modules() if n.endswith(suffix)}

    streams, inner = widths("conv2"), widths(".conv1")
    result = l1_prune(model, 0.75, (3, 16, 16))
    assert model.conv1.out_channels == 8 and widths("conv2") == streams
    assert len(inner) == 9 and all(widths(".conv1")[n] < inner[n] for n in inner)
    assert result.reached and result.macs <= result.budget
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_a_dense_model_within_budget_is_left_whole():
    model = create_model("lenet5", in_channels=1, seed=0)
    result = l1_prune(model, 0.5, (1, 28, 28), budget=10**9)
    assert result.ratio == 0.0 and result.widths == {} and result.params == 61_706


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": "flops"}, "unknown l1 target"),
        ({"sparsity": 1.0}, "sparsity must be"),
    ],
)
def test_bad_requests_raise_one_clear_error(change, message):
    options = {"sparsity": 0.5, "target": "macs", **change}
    model = create_model("lenet5", in_channels=1)
    with pytest.raises(TopopruneError, match=message):
        l1_prune(model, options["sparsity"], (1, 28, 28), target=options["target"])


def test_a_masked_model_is_refused():
    model = create_model("lenet5", in_channels=1)
    prune(model, "random", 0.5)
    with pytest.raises(TopopruneError, match="unmasked model"):
        l1_prune(model, 0.5, (1, 28, 28))
