"""realize() and the fused model on CUDA (cuDNN grouped convs); skipped where CUDA is absent."""

import pytest
import torch

from topoprune.compact import CompactConv2d, realize
from topoprune.measure import latencies
from topoprune.models import create_model
from topoprune.pruning import prune

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_realize_on_cuda_keeps_the_outputs_and_uses_grouped_forms():
    model = create_model("resnet20", num_classes=10, seed=0)
    prune(model, "rgp", 0.75, nodes=8, steps=10, seed=0)
    model = model.cuda().eval()
    x = torch.randn(8, 3, 32, 32, device="cuda")
    realized = realize(model, x, repeats=2, warmup=1)
    for layer in realized.realize_report.layers:
        assert not any(name.startswith("direct") for name in layer.times_ms)  # CPU-only kernel
    assert any(isinstance(m, CompactConv2d) for m in realized.modules()) or all(
        layer.chosen == "dense" for layer in realized.realize_report.layers
    )
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(realized(x), expected, rtol=1e-3, atol=1e-4)
    timed = latencies({"masked": model, "realized": realized}, (3, 32, 32), 8, device="cuda")
    assert timed["realized"].device == "cuda" and timed["realized"].median_ms > 0
