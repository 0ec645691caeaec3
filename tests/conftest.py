import pytest
import torch

from tests.tiny_models import CONFIGS, make_model


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="device for model tests (cpu, cuda)")


@pytest.fixture
def device(request):
    return torch.device(request.config.getoption("--device"))


@pytest.fixture(params=sorted(CONFIGS))
def arch(request):
    return request.param


@pytest.fixture
def tiny_model(arch, device):
    return make_model(arch).to(device)


@pytest.fixture
def gpt2():
    return make_model("gpt2")


@pytest.fixture(scope="module")
def model():
    """A tiny GPT-2 shared by the tests of a module (plotting, widgets)."""
    return make_model("gpt2")
