"""Every registered model runs on every input size the project uses (or on its only one)."""

import pytest
import torch

from topoprune.models import create_model, list_models

INPUT_SIZES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
IMAGENET_MODELS = ["mobilenetv2", "resnet18"]  # resnet50 at 224: test_resnet50_macs_at_224


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize(("channels", "height", "width"), INPUT_SIZES)
def test_forward_shape_on_small_inputs(name, channels, height, width):
    model = create_model(name, num_classes=7, in_channels=channels, seed=0)
    height, width = getattr(model, "image_size", (height, width))  # fixed-size models: theirs
    logits = model(torch.randn(2, channels, height, width))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", IMAGENET_MODELS)
def test_imagenet_models_run_at_224(name):
    model = create_model(name, num_classes=1000, seed=0).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_mobilenetv2_small_input_keeps_a_4x4_map_at_32():
    model = create_model("mobilenetv2", small_input=True).eval()
    regular = create_model("mobilenetv2").eval()
    with torch.no_grad():
        x = torch.randn(1, 3, 32, 32)
        assert model.features(x).shape == (1, 1280, 4, 4)
        assert regular.features(x).shape == (1, 1280, 1, 1)
