import time

from topoprune.measure.timing import medians, time_interleaved


def test_every_function_gets_warmup_calls_and_repeats_samples_in_rounds():
    calls = []
    functions = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = time_interleaved(functions, repeats=4, warmup=2)
    assert calls == list("aabbcc") + list("abc") * 4
    assert {name: len(values) for name, values in samples.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(value >= 0 for values in samples.values() for value in values)


def test_hopeless_candidates_stop_being_timed_after_drop_after_rounds():
    functions = {"fast": lambda: None, "slow": lambda: time.sleep(0.005)}
    samples = time_interleaved(functions, repeats=6, warmup=0, drop_factor=3.0, drop_after=2)
    assert len(samples["fast"]) == 6 and len(samples["slow"]) == 2


def test_without_drop_factor_nothing_is_dropped():
    functions = {"fast": lambda: None, "slow": lambda: time.sleep(0.002)}
    samples = time_interleaved(functions, repeats=3, warmup=0)
    assert len(samples["slow"]) == 3


def test_medians():
    assert medians({"a": [3.0, 1.0, 2.0], "b": [4.0, 6.0]}) == {"a": 2.0, "b": 5.0}
