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


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained two-level network on a 48-pixel grid: the commands' plumbing without a
    trained model's seconds (test files with their own grid define their own)."""
    from cardiopheno.segment.network import NetworkConfig, build_network, save_checkpoint
    from cardiopheno.segment.transforms import PreprocessConfig

    net = NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, build_network(net), net, PreprocessConfig(roi=48, crop=32))
    return path
