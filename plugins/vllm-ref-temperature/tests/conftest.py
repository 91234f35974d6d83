import pytest
import torch


@pytest.fixture
def one_thread():
    # One thread keeps each row's reductions in the same order whether a row is computed alone
    # (the reference) or inside a batch (the processor), so bitwise comparison is fair.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
