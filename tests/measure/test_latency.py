"""latency(): sane statistics, inference mode, restored train/eval modes, argument checks."""

import json

import pytest
import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.measure import latency


class Recorder(nn.Module):
    """Records the grad/inference/training state and input shape of every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 4)
        self.calls: list[tuple[bool, bool, tuple[int, ...]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_inference_mode_enabled(), self.training, tuple(x.shape)))
        return self.linear(x)


def test_stats_are_ordered_and_positive():
    stats = latency(nn.Sequential(nn.Linear(16, 16), nn.ReLU()), (16,), batch=4, repeats=7)
    assert len(stats.samples_ms) == stats.repeats == 7
    assert (stats.batch, stats.warmup, stats.device) == (4, 3, "cpu")
    assert 0 < stats.min_ms <= stats.p10_ms <= stats.median_ms <= stats.p90_ms <= stats.max_ms
    assert stats.min_ms <= stats.mean_ms <= stats.max_ms
    assert stats.median_ms == sorted(stats.samples_ms)[3]
    assert stats.std_ms >= 0
    assert stats.throughput == pytest.approx(4000 / stats.median_ms)
    assert stats.threads == torch.get_num_threads()


def test_runs_warmup_plus_repeats_in_eval_and_inference_mode():
    model = Recorder().train()
    latency(model, (8,), batch=2, warmup=2, repeats=3)
    assert model.calls == [(True, False, (2, 8))] * 5


def test_restores_each_module_mode():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(), nn.BatchNorm1d(4)).train()
    model[2].eval()
    latency(model, (4,), warmup=0, repeats=1)
    assert [module.training for module in model.modules()] == [True, True, True, False]


def test_single_run_has_zero_spread_and_serialises():
    stats = latency(nn.Linear(3, 3), (3,), warmup=0, repeats=1)
    assert stats.std_ms == 0.0
    assert stats.min_ms == stats.median_ms == stats.max_ms == stats.samples_ms[0]
    record = json.loads(json.dumps(stats.to_dict()))
    assert record["repeats"] == 1 and record["throughput"] == stats.throughput


@pytest.mark.parametrize(("batch", "warmup", "repeats"), [(0, 3, 10), (1, -1, 10), (1, 3, 0)])
def test_bad_arguments_raise(batch, warmup, repeats):
    with pytest.raises(TopopruneError, match="latency needs"):
        latency(nn.Linear(3, 3), (3,), batch, warmup=warmup, repeats=repeats)


def test_wrong_input_size_raises_and_restores_mode():
    model = nn.Linear(3, 3).train()
    with pytest.raises(TopopruneError, match="check input_size"):
        latency(model, (4,))
    assert model.training
