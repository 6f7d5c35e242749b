"""Shared fixtures and markers for the test suite."""

from pathlib import Path

import pytest
import torch

from tests.hub_server import HubServer
from tests.train_helpers import REPO_ROOT, make_dataset_dict, reset_accelerate_state

# The real data sets live beside the project (`../shared/data`) on developer machines and in CI;
# a user's fresh clone does not have them.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to `../shared/data`; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only developer machines and CI have ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def hub():
    """A loopback Hub server (tests/hub_server.py) shared by one module's tests."""
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> str:
    """A tiny labelled DatasetDict of squares and bars (tests/train_helpers.py), shared by one module's tests."""
    return str(make_dataset_dict(tmp_path_factory.mktemp("data") / "blobs"))


@pytest.fixture
def fresh_accelerate_state():
    """Each run in this process builds its own Accelerator, as a new launch would.

    The torch thread count that `--num_threads` sets is put back afterwards, so that later tests compute
    as a fresh process does (test_hub_push compares in-process samples with a subprocess's bit for bit).
    """
    threads = torch.get_num_threads()
    reset_accelerate_state()
    yield
    reset_accelerate_state()
    torch.set_num_threads(threads)
