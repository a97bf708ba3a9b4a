import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny forwards (most of the suite) run faster on one thread than on two competing ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_rgp_run(tmp_path_factory):
    """A finished RGP run folder of LeNet-5 on the bundled digits: one step of training."""
    from topoprune.experiments.protocols import run_pruned
    from topoprune.training import TrainConfig

    out = tmp_path_factory.mktemp("runs") / "rgp"
    config = TrainConfig(epochs=1, max_steps_per_epoch=1, batch_size=32)
    run_pruned(
        "lenet5",
        "digits",
        config,
        method="rgp",
        sparsity=0.5,
        prune_options={"nodes": 6},
        out_dir=out,
        progress=False,
        measure_speed=False,
    )
    return out
