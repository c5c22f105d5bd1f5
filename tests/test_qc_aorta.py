"""Aortic segmentation QC (the anchor's criteria plus ours): clean passes, each fault is named."""

from __future__ import annotations

import numpy as np
import pytest

from cardiopheno import ASCENDING_AORTA, DESCENDING_AORTA
from cardiopheno.qc.aorta import (
    AORTA_CHECKS,
    AORTA_DESCRIPTIONS,
    AortaQCThresholds,
    area_range,
    check_aorta,
    components,
    frame_jumps,
    image_noise,
    vessel_ratio,
    vessels_present,
)
from cardiopheno.synth.aorta import simulate_aorta
from cardiopheno.synth.population import sample_population


@pytest.fixture(scope="module")
def subject():
    return simulate_aorta(sample_population(2, seed=5).iloc[0], 5, 0, n_frames=40)


def failed(results):
    return {r.name: r.reason for r in results if r.passed is False}


def test_clean_synthetic_segmentation_passes_every_check(subject):
    results = check_aorta(subject.labels, subject.image)
    assert [r.name for r in results] == list(AORTA_CHECKS) and set(AORTA_DESCRIPTIONS) == set(
        AORTA_CHECKS
    )
    assert all(r.passed for r in results), failed(results)


def test_noisy_segmentation_with_speckle_and_a_second_blob_fails_components(subject, rng):
    labels = subject.labels.copy()
    speckle = rng.random(labels.shape) < 0.01  # isolated pixels all over the slice
    labels[speckle & (labels == 0)] = DESCENDING_AORTA
    res = components(labels)
    assert res.passed is False and "DAo" in res.reason and "fragments" in res.reason
    blob = subject.labels.copy()
    blob[5:10, 5:10, 0, 7] = ASCENDING_AORTA  # a second 25-pixel AAo region in one frame
    res = components(blob)
    assert res.passed is False and "AAo in 2 components" in res.reason and "frame 7" in res.reason
    assert failed(check_aorta(blob, subject.image)).keys() == {"ao_components"}


def test_abrupt_area_change_and_a_missing_frame_are_named(subject):
    labels = subject.labels.copy()
    aao = labels[..., 12] == ASCENDING_AORTA
    labels[..., 12][aao] = 0
    assert vessels_present(labels).reason == "AAo absent in 1 of 40 frames (first: 12)"
    res = frame_jumps(labels)
    assert res.passed is False and "at frame 12" in res.reason
    half = subject.labels.copy()
    rows = np.nonzero(half[..., 20] == DESCENDING_AORTA)[0]
    half[: int(np.median(rows)) + 1, :, :, 20][half[: int(np.median(rows)) + 1, :, :, 20] == 2] = 0
    assert frame_jumps(half).passed is False
    assert frame_jumps(half, max_frame_ratio=10.0).passed is True


def test_area_range_swapped_labels_and_image_spike(subject):
    labels = np.zeros((40, 40, 1, 10), np.uint8)
    sides = (10, 12, 14, 16, 18, 19, 17, 15, 13, 11)  # smooth over the cycle, max/min 3.6
    for t, side in enumerate(sides):
        labels[5 : 5 + side, 5 : 5 + side, 0, t] = ASCENDING_AORTA
        labels[25:32, 25:32, 0, t] = DESCENDING_AORTA
    # ten coarse frames step by up to x1.44: a jump for 100-frame cines, not at the anchor's 2
    assert frame_jumps(labels, max_frame_ratio=2.0).passed is True
    assert frame_jumps(labels).passed is False
    assert area_range(labels).passed is False and "AAo max/min area" in area_range(labels).reason
    assert area_range(labels, max_cycle_ratio=4.0).passed is True
    swapped = subject.labels.copy()
    swapped[subject.labels == ASCENDING_AORTA] = DESCENDING_AORTA
    swapped[subject.labels == DESCENDING_AORTA] = ASCENDING_AORTA
    assert vessel_ratio(swapped).passed is False
    assert vessel_ratio(subject.labels).passed is True
    image = subject.image.copy()
    i, j = np.argwhere(subject.labels[:, :, 0, 30] == ASCENDING_AORTA)[0]
    image[i, j, 0, 30] = 5 * image[..., 0][subject.labels[..., 0] == ASCENDING_AORTA].mean()
    res = image_noise(image, subject.labels)
    assert res.passed is False and "AAo intensity spike" in res.reason and "frame 30" in res.reason


def test_thresholds_from_config():
    th = AortaQCThresholds.from_config({"max_frame_ratio": 1.5, "vessel_area_ratio": [1.0, 3.0]})
    assert th.max_frame_ratio == 1.5 and th.vessel_area_ratio == (1.0, 3.0)
    with pytest.raises(ValueError, match="unknown aortic qc key"):
        AortaQCThresholds.from_config({"max_frame_ration": 1.5})
    no_image = check_aorta(np.zeros((8, 8, 1, 3), np.uint8))
    assert {r.name: r.passed for r in no_image}["ao_image_noise"] is None
