"""Training augmentation modes: ``exact`` moves pixels without resampling or changing them."""

from __future__ import annotations

import numpy as np
import pytest
from monai.utils import set_determinism

from cardiopheno.segment.augment import augment_mode, train_transforms
from cardiopheno.segment.train import TrainConfig, train


def _sample(rng, channels: int = 4, size: int = 40):
    """An image whose last channel numbers its pixels (so where each pixel went is readable)
    and a random label map."""
    image = rng.random((channels, size, size)).astype(np.float32)
    image[-1] = np.arange(size * size, dtype=np.float32).reshape(size, size) / (size * size)
    label = rng.integers(0, 4, (1, size, size)).astype(np.uint8)
    return {"image": image, "label": label}


@pytest.mark.parametrize("patch", [None, 24])
def test_exact_augmentation_moves_image_and_label_together_without_resampling(rng, patch):
    size = 40
    set_determinism(seed=3)
    transform = train_transforms("exact", patch, symmetric=True, context=1, reference=True)
    sample = _sample(rng, size=size)
    moved_any = False
    for _ in range(12):
        out = transform({k: v.copy() for k, v in sample.items()})
        image, label = np.asarray(out["image"]), np.asarray(out["label"])
        assert label.shape[1:] == image.shape[1:] == ((patch, patch) if patch else (size, size))
        # every output pixel is one input pixel: its number is an integer, its label the input's
        where = np.rint(image[3] * size * size).astype(int)
        np.testing.assert_allclose(image[3] * size * size, where, atol=1e-3)
        np.testing.assert_array_equal(label[0], sample["label"][0].ravel()[where])
        # the 2.5D slices (channels 0-2) travel with it, unchanged in value (no intensity
        # augmentation), in the input's order or reversed (stacks run either way)
        slices = [sample["image"][c].ravel()[where] for c in range(3)]
        if not np.allclose(image[0], slices[0], atol=1e-6):
            slices = slices[::-1]
        np.testing.assert_allclose(image[:3], np.stack(slices), atol=1e-6)
        moved_any |= not np.array_equal(where, np.arange(size * size).reshape(size, size))
    assert moved_any


def test_full_augmentation_changes_pixel_values_and_augment_values_are_checked(rng):
    set_determinism(seed=3)
    transform = train_transforms("full", 24, symmetric=True)
    sample = _sample(rng, channels=1)
    values = [np.asarray(transform(dict(sample))["image"])[-1] for _ in range(8)]
    # rotation, scaling and intensity changes: some pixel is no longer one of the input's
    assert any(np.abs(v * 1600 - np.rint(v * 1600)).max() > 0.01 for v in values)
    assert augment_mode(True) == "full" and augment_mode(False) == "none"
    assert augment_mode("exact") == "exact"
    with pytest.raises(ValueError, match="augment must be one of full, exact, none"):
        augment_mode("mild")


def test_training_refuses_an_unknown_augmentation_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="augment must be one of"):
        train(None, tmp_path / "run", TrainConfig(augment="strong"))
    assert not (tmp_path / "run").exists()
