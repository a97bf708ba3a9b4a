import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """Tiny forwards run far faster on one thread than on two fighting for 2 shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
