"""remove_empty_channels: exact removal of dead and zero channels; realize(remove_empty=True)."""

import pytest
import torch
from torch import nn

from topoprune.compact import EmptyChannelReport, empty_channels, realize, remove_empty_channels
from topoprune.errors import TopopruneError
from topoprune.measure import count
from topoprune.models import create_model
from topoprune.pruning.base import apply_masks

LAYERS = (nn.Conv2d, nn.Linear)
VGG_WIDTHS = [16, 16, 32, 32, 32, 32, 32, 32]
CRESNET_WIDTHS = [8, 16, 16, 32] + [8] * 8


def random_masks(model: nn.Module, seed: int, keep: float = 0.8) -> dict[str, torch.Tensor]:
    """A random bool mask (True = kept) for every conv and linear weight, none of them empty."""
    generator = torch.Generator().manual_seed(seed)
    masks = {
        name: torch.rand(module.weight.shape, generator=generator) < keep
        for name, module in model.named_modules()
        if isinstance(module, LAYERS)
    }
    for counts in empty_channels(masks).values():  # the tests' expected counts rely on this
        assert counts["empty_filters"] == counts["empty_inputs"] == 0
    return masks


def trained_bn(model: nn.Module, seed: int) -> nn.Module:
    """Give every BatchNorm random statistics and affine parameters, as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)
    return model


def set_shift(model: nn.Module, bn: str, channel: int, beta: float) -> None:
    """Make BN ``bn`` map 0 to ``beta`` on ``channel`` (running mean 0)."""
    module = model.get_submodule(bn)
    with torch.no_grad():
        module.running_mean[channel] = 0.0
        module.bias[channel] = beta


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


def drop(mask: torch.Tensor, rows=(), columns=()) -> torch.Tensor:
    """``mask`` without the given rows (dim 0) and columns (dim 1)."""
    keep_rows = [i for i in range(mask.shape[0]) if i not in set(rows)]
    keep_columns = [j for j in range(mask.shape[1]) if j not in set(columns)]
    return mask[keep_rows][:, keep_columns]


def check_masks(narrow: nn.Module, model: nn.Module, rows: dict, columns: dict) -> None:
    """Every mask and weight_orig of ``narrow`` is ``model``'s with those rows/columns removed."""
    for name, module in model.named_modules():
        if not isinstance(module, LAYERS):
            continue
        kept = narrow.get_submodule(name)
        cut = {"rows": rows.get(name, ()), "columns": columns.get(name, ())}
        assert torch.equal(kept.weight_mask.bool(), drop(module.weight_mask.bool(), **cut)), name
        assert torch.equal(kept.weight_orig, drop(module.weight_orig, **cut)), name


def check_rows(report: EmptyChannelReport, expected: dict[str, tuple]) -> None:
    """Rows named in ``expected`` are (before, after, dead, zero, constant); others unchanged."""
    for row in report.layers:
        got = (row.before, row.after, row.removed_dead, row.removed_zero, row.kept_constant)
        if row.name in expected:
            assert got == expected[row.name], row.name
        else:
            assert got == (row.before, row.before, 0, 0, 0), row.name


def resnet20() -> nn.Module:
    return trained_bn(create_model("resnet20", in_channels=1, num_classes=10, seed=0), seed=1)


def vgg11() -> nn.Module:
    model = create_model("vgg11", in_channels=1, num_classes=10, widths=VGG_WIDTHS, seed=0)
    return trained_bn(model, seed=1)


def cresnet18() -> nn.Module:
    model = create_model("cresnet18", in_channels=1, num_classes=10, widths=CRESNET_WIDTHS, seed=0)
    return trained_bn(model, seed=1)


def example(size: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(4, *size, generator=torch.Generator().manual_seed(2))


def resnet20_dead() -> nn.Module:
    """ResNet-20 with 3 + 2 + 1 dead inner channels (one of them with an empty filter too)."""
    model = resnet20()
    masks = random_masks(model, seed=3)
    masks["layer1.0.conv2"][:, [1, 5, 9]] = False
    masks["layer3.2.conv2"][:, [0, 63]] = False
    masks["layer2.1.conv1"][7] = False
    masks["layer2.1.conv2"][:, 7] = False
    return apply_masks(model, masks)


RESNET20_DEAD_ROWS = {
    "layer1.0.conv1": [1, 5, 9],
    "layer3.2.conv1": [0, 63],
    "layer2.1.conv1": [7],
}


def test_dead_channels_of_resnet20_go_and_outputs_stay():
    model, x = resnet20_dead(), example((1, 28, 28))
    narrow, report = remove_empty_channels(model, x)
    check_rows(
        report,
        {
            "layer1.0.conv1": (16, 13, 3, 0, 0),
            "layer3.2.conv1": (64, 62, 2, 0, 0),
            "layer2.1.conv1": (32, 31, 1, 0, 0),
        },
    )
    assert narrow.layer1[0].bn1.num_features == 13 and narrow.layer1[0].conv2.in_channels == 13
    assert narrow.layer3[2].bn1.running_mean.shape == (62,)
    columns = {
        name.replace("conv1", "conv2"): removed for name, removed in RESNET20_DEAD_ROWS.items()
    }
    check_masks(narrow, model, RESNET20_DEAD_ROWS, columns)
    expected = outputs(model, x)
    assert expected.std(dim=0).min() > 1e-3
    torch.testing.assert_close(outputs(narrow, x), expected)
    assert report.params_after < report.params_before
    assert report.totals["removed_dead"] == 6 and report.totals["removed_zero"] == 0
    assert report.skipped["conv1"] == "full width"
    assert report.to_dict()["totals"] == report.totals


def test_dead_channels_of_vgg11_go_up_to_the_classifier_input():
    model, x = vgg11(), example((1, 32, 32))
    masks = random_masks(model, seed=4)
    masks["features.4"][:, [2, 3]] = False
    masks["classifier"][:, 5] = False
    apply_masks(model, masks)
    narrow, report = remove_empty_channels(model, x)
    check_rows(report, {"features.0": (16, 14, 2, 0, 0), "features.25": (32, 31, 1, 0, 0)})
    assert narrow.features[1].num_features == 14 and narrow.classifier.in_features == 31
    check_masks(
        narrow,
        model,
        {"features.0": [2, 3], "features.25": [5]},
        {"features.4": [2, 3], "classifier": [5]},
    )
    torch.testing.assert_close(outputs(narrow, x), outputs(model, x))


def test_zero_channels_go_when_a_relu_cuts_the_bn_shift_to_zero():
    model, x = resnet20(), example((1, 28, 28))
    masks = random_masks(model, seed=5)
    masks["layer1.1.conv1"][[0, 3]] = False
    for channel in (0, 3):
        set_shift(model, "layer1.1.bn1", channel, -1.0)  # relu(-1) = 0 whatever the input
    apply_masks(model, masks)
    narrow, report = remove_empty_channels(model, x)
    check_rows(report, {"layer1.1.conv1": (16, 14, 0, 2, 0)})
    check_masks(narrow, model, {"layer1.1.conv1": [0, 3]}, {"layer1.1.conv2": [0, 3]})
    torch.testing.assert_close(outputs(narrow, x), outputs(model, x))

    model, x = vgg11(), example((1, 32, 32))
    masks = random_masks(model, seed=6)
    masks["features.8"][4] = False
    set_shift(model, "features.9", 4, -1.0)
    apply_masks(model, masks)
    narrow, report = remove_empty_channels(model, x)
    check_rows(report, {"features.8": (32, 31, 0, 1, 0)})
    check_masks(narrow, model, {"features.8": [4]}, {"features.11": [4]})
    torch.testing.assert_close(outputs(narrow, x), outputs(model, x))


def test_empty_filters_with_a_positive_shift_stay_as_constants():
    model, x = resnet20(), example((1, 28, 28))
    masks = random_masks(model, seed=7)
    masks["layer2.0.conv1"][2] = False
    set_shift(model, "layer2.0.bn1", 2, 0.5)
    masks["layer1.2.conv1"][[4, 6]] = False  # one cut to 0 by the ReLU, one constant
    set_shift(model, "layer1.2.bn1", 4, -0.5)
    set_shift(model, "layer1.2.bn1", 6, 0.25)
    apply_masks(model, masks)
    seen = {}

    def look(module: nn.Module, args: tuple) -> None:
        seen.setdefault("x", args[0][:, 2].clone())

    hook = model.layer2[0].conv2.register_forward_pre_hook(look)
    expected = outputs(model, x)
    hook.remove()
    assert torch.all(seen["x"] == 0.5)  # the constant a padded consumer sees inside the image
    narrow, report = remove_empty_channels(model, x)
    check_rows(report, {"layer2.0.conv1": (32, 32, 0, 0, 1), "layer1.2.conv1": (16, 15, 0, 1, 1)})
    check_masks(narrow, model, {"layer1.2.conv1": [4]}, {"layer1.2.conv2": [4]})
    torch.testing.assert_close(outputs(narrow, x), expected)


def test_option_a_residual_stream_stays_full_width():
    model, x = resnet20(), example((1, 28, 28))
    masks = random_masks(model, seed=8)
    masks["conv1"][3] = False  # the stem filter is empty ...
    set_shift(model, "bn1", 3, -1.0)
    for name in ("layer1.0.conv1", "layer1.1.conv1", "layer1.2.conv1", "layer2.0.conv1"):
        masks[name][:, 3] = False  # ... and no conv reads the stem's channel 3 directly
    apply_masks(model, masks)
    narrow, report = remove_empty_channels(model, x)
    check_rows(report, {})
    stream = ["conv1"] + [f"layer{s}.{b}.conv2" for s in (1, 2, 3) for b in range(3)]
    assert all(report.skipped[name] == "full width" for name in stream)
    assert report.params_after == report.params_before
    check_masks(narrow, model, {}, {})
    torch.testing.assert_close(outputs(narrow, x), outputs(model, x))


def test_projection_shortcut_streams_of_cresnet18_shrink_as_one_group():
    model, x = cresnet18(), example((1, 16, 16))
    masks = random_masks(model, seed=9)
    stage1 = ["conv1", "layer1.0.conv2", "layer1.1.conv2"]
    for name in ("layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.0.shortcut.0"):
        masks[name][:, 2] = False  # stage-1 stream channel 2: nothing reads it
    stage4 = ["layer4.0.conv2", "layer4.0.shortcut.0", "layer4.1.conv2"]
    for name in stage4:
        masks[name][5] = False  # stage-4 channel 5: relu(-1 - 1), then relu(-1 + 0)
    for bn in ("layer4.0.bn2", "layer4.0.shortcut.1", "layer4.1.bn2"):
        set_shift(model, bn, 5, -1.0)
    stage3 = ["layer3.0.conv2", "layer3.0.shortcut.0", "layer3.1.conv2"]
    for name in stage3:
        masks[name][1] = False  # stage-3 channel 1: relu(-1 + 2) = 1 reaches layer3.1.conv1
    for bn, beta in (("layer3.0.bn2", -1.0), ("layer3.0.shortcut.1", 2.0), ("layer3.1.bn2", -1.0)):
        set_shift(model, bn, 1, beta)
    apply_masks(model, masks)
    narrow, report = remove_empty_channels(model, x)
    check_rows(
        report,
        {
            **{name: (8, 7, 1, 0, 0) for name in stage1},
            **{name: (32, 31, 0, 1, 0) for name in stage4},
            **{name: (16, 16, 0, 0, 1) for name in stage3},
        },
    )
    assert narrow.layer2[0].shortcut[0].in_channels == 7 and narrow.fc.in_features == 31
    columns = {
        **dict.fromkeys(
            ["layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.0.shortcut.0"], [2]
        ),
        **dict.fromkeys(["layer4.1.conv1", "fc"], [5]),
    }
    rows = {**dict.fromkeys(stage1, [2]), **dict.fromkeys(stage4, [5])}
    check_masks(narrow, model, rows, columns)
    torch.testing.assert_close(outputs(narrow, x), outputs(model, x))


def test_realize_with_remove_empty_is_exact_and_smaller():
    model, x = resnet20_dead(), example((1, 28, 28))
    options = {"candidates": ["dense"], "repeats": 1, "warmup": 0, "trainable": True}
    narrow = realize(model, x, remove_empty=True, **options)
    plain = realize(model, x, **options)
    torch.testing.assert_close(outputs(narrow, x), outputs(model, x))
    assert count(narrow, (1, 28, 28)).params < count(plain, (1, 28, 28)).params
    assert narrow.empty_channel_report.totals["removed_dead"] == 6
    assert plain.empty_channel_report is None
    assert narrow.layer1[0].conv2.in_channels == 13


def test_the_input_model_is_unchanged():
    model, x = resnet20_dead(), example((1, 28, 28))
    model.train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    narrow, _ = remove_empty_channels(model, x)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert model.training and all(module.training for module in model.modules())
    assert narrow.training and narrow.layer1[0].conv1.weight_orig.requires_grad


def test_a_group_keeps_one_channel_and_odd_masks_are_refused():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))
    mask = torch.ones(4, 3 * 4 * 4, dtype=torch.bool)
    mask[:, :32] = False  # channels 0 and 1 of the conv are dead; channel 2 is read
    apply_masks(model, {"3": mask})
    x = example((2, 6, 6))
    narrow, report = remove_empty_channels(model, x)
    assert narrow[0].out_channels == 1 and narrow[3].weight_mask.shape == (4, 16)
    torch.testing.assert_close(outputs(narrow, x), outputs(model, x))
    mask[:, 32:] = False  # now every channel is dead: one stays
    apply_masks(model, {"3": mask})
    narrow, report = remove_empty_channels(model, x)
    assert narrow[0].out_channels == 1 and report.totals["removed_dead"] == 2
    torch.testing.assert_close(outputs(narrow, x), outputs(model, x))

    from torch.nn.utils import prune

    prune.custom_from_mask(model[0], "bias", torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(TopopruneError, match="conv and linear weights only"):
        remove_empty_channels(model, x)


def test_empty_channels_counts_fully_masked_filters_and_inputs():
    conv = torch.ones(4, 3, 2, 2, dtype=torch.bool)
    conv[1] = False  # filter 1
    conv[:, 2] = False  # input 2
    conv[3, 0] = False  # filter 3 keeps input 1: not empty
    linear = torch.ones(5, 6)
    linear[[0, 4]] = 0
    linear[:, [3, 5]] = 0
    linear[1:4, 1] = 0  # input 1 kept by no row left: rows 0 and 4 are empty already
    assert empty_channels({"conv": conv, "fc": linear, "bias": torch.zeros(5)}) == {
        "conv": {"filters": 4, "empty_filters": 1, "inputs": 3, "empty_inputs": 1},
        "fc": {"filters": 5, "empty_filters": 2, "inputs": 6, "empty_inputs": 3},
    }
