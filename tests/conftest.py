"""Shared fixtures and markers for the test suite."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The real data sets live beside the project (`../shared/data`) on developer machines and in CI;
# a user's fresh clone does not have them.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real data not found at {SHARED_DATA} (only developer machines and CI have ../shared)"
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to `../shared/data`; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only developer machines and CI have ../shared)")
    return SHARED_DATA
