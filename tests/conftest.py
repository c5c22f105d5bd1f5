"""Shared fixtures: the real data folder (skipping when absent) and tiny seeded generators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests using it skip when a clone does not have it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real cardiac MRI data not found at {SHARED_DATA} (only in the team's checkout)"
        )
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
