"""Hand-computed MAC and parameter counts for single modules."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from topoprune.measure import count
from topoprune.measure.rules import adaptive_window_total, mac_rule

# (module, input_size, expected params, expected MACs); each MAC figure is worked out by hand.
HAND_COUNTS = [
    # out 4x4: (9 + 2·1 − 2·(3−1) − 1) // 2 + 1 = 4; 16 positions × 6 out × 4/2 in × 9 taps
    (nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (4, 9, 9), 6 * 2 * 9 + 6, 1728),
    # out 5x4: W = (7 + 2 − 3) // 2 + 1 = 4; 20 positions × 4·3·1·3 = 36 weights
    (nn.Conv2d(3, 4, (1, 3), stride=(1, 2), padding=(0, 1)), (3, 5, 7), 36 + 4, 720),
    # depthwise: 36 positions × 8·1·9 = 72 weights
    (nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), (8, 6, 6), 72, 2592),
    # 3-d: out 3x2x2 = 12 positions × 3·2·1·2·2 = 24 weights
    (nn.Conv3d(2, 3, (1, 2, 2), bias=False), (2, 3, 3, 3), 24, 288),
    # transposed: every weight once per input position: 25 × 2·4·9 = 72 weights
    (nn.ConvTranspose2d(2, 4, 3, stride=2, bias=False), (2, 5, 5), 72, 1800),
    # linear: 10 in × 5 out; on 3 rows, three times as many
    (nn.Linear(10, 5), (10,), 55, 50),
    (nn.Linear(10, 5), (3, 10), 55, 150),
    # batch norm: one MAC per element (4·5·5), affine or not
    (nn.BatchNorm2d(4), (4, 5, 5), 8, 100),
    (nn.BatchNorm2d(4, affine=False), (4, 5, 5), 0, 100),
    (nn.BatchNorm1d(3), (3, 7), 6, 21),
    # out (7 + 2 − 3) // 2 + 1 = 4: 2·4·4 = 32 outputs × 9 window elements
    (nn.MaxPool2d(3, stride=2, padding=1), (2, 7, 7), 0, 288),
    (nn.MaxPool2d(2, return_indices=True), (1, 4, 4), 0, 16),
    # 2 planes × 3 outputs × 3
    (nn.MaxPool1d(3), (2, 9), 0, 18),
    # 3·3·3 = 27 outputs × 4
    (nn.AvgPool2d(2), (3, 6, 6), 0, 108),
    # H 5 → 2: windows [0,3) [2,5) = 6; W 7 → 3: [0,3) [2,5) [4,7) = 9; 2 planes × 6 × 9
    (nn.AdaptiveAvgPool2d((2, 3)), (2, 5, 7), 0, 108),
    # global: 3 planes × 16
    (nn.AdaptiveMaxPool2d(1), (3, 4, 4), 0, 48),
]


@pytest.mark.parametrize(("module", "input_size", "params", "macs"), HAND_COUNTS)
def test_hand_counts(module, input_size, params, macs):
    counts = count(module, input_size)
    assert (counts.params, counts.macs) == (params, macs)
    assert (counts.dense_params, counts.dense_macs) == (params, macs)
    assert counts.flops == 2 * macs
    assert [layer.type for layer in counts.layers] == [type(module).__name__]
    assert counts.uncounted == []


@pytest.mark.parametrize("module", [nn.ReLU(), nn.Dropout(), nn.Flatten(), nn.Identity()])
def test_modules_without_rule_or_params_add_nothing(module):
    counts = count(nn.Sequential(nn.Linear(4, 4), module), (4,))
    assert (counts.params, counts.macs) == (20, 16)
    assert [layer.name for layer in counts.layers] == ["0"]
    assert mac_rule(module) is None


@settings(max_examples=40, deadline=None)
@given(in_size=st.integers(1, 30), out_size=st.integers(1, 40))
def test_adaptive_window_total_matches_pytorch_windows(in_size, out_size):
    # Average-pooling the one-hot vectors e_j: output i is non-zero exactly when j is in window i.
    one_hots = torch.eye(in_size).reshape(in_size, 1, in_size)
    pooled = nn.functional.adaptive_avg_pool1d(one_hots, out_size)
    assert adaptive_window_total(in_size, out_size) == int(torch.count_nonzero(pooled))
