"""Provided segmentations (manifest seg_sa): accepted when they fit the image, else a reason."""

from __future__ import annotations

import numpy as np
import pytest

from cardiopheno.io.nifti import save_labels_like, save_nifti
from cardiopheno.io.provided import check_provided_segmentation

SHAPE = (10, 8, 3, 4)
AFFINE = np.array([[1.5, 0, 0, -10], [0, 1.5, 0, 5], [0, 0, 8.0, 20], [0, 0, 0, 1]])


@pytest.fixture
def image(tmp_path, rng):
    path = tmp_path / "sa.nii.gz"
    save_nifti(path, rng.random(SHAPE).astype(np.float32), AFFINE, zooms=(1.5, 1.5, 8.0, 30.0))
    return path


def labels(values=(0, 1, 2, 3)) -> np.ndarray:
    out = np.zeros(SHAPE, dtype=np.uint8)
    for i, v in enumerate(values):
        out[i, :, :, :] = v
    return out


def test_matching_label_map_is_accepted(image, tmp_path):
    seg = tmp_path / "seg.nii.gz"
    save_labels_like(seg, labels(), image)
    assert check_provided_segmentation(image, seg) == ""


def test_missing_file_is_named(image, tmp_path):
    assert "not found" in check_provided_segmentation(image, tmp_path / "nope.nii.gz")


def test_other_shape_is_rejected(image, tmp_path):
    seg = tmp_path / "seg.nii.gz"
    save_nifti(seg, labels()[:, :, :2], AFFINE)
    assert "shape" in check_provided_segmentation(image, seg)


def test_other_grid_is_rejected(image, tmp_path):
    seg = tmp_path / "seg.nii.gz"
    shifted = AFFINE.copy()
    shifted[0, 3] += 1.5  # one voxel off
    save_nifti(seg, labels(), shifted)
    assert "another grid" in check_provided_segmentation(image, seg)


def test_foreign_label_values_are_rejected(image, tmp_path):
    seg = tmp_path / "seg.nii.gz"
    save_labels_like(seg, labels((0, 1, 4)), image)  # e.g. a tool writing 4 for the RV wall
    reason = check_provided_segmentation(image, seg)
    assert "[4]" in reason and "outside" in reason


def test_non_integer_values_are_rejected(image, tmp_path):
    seg = tmp_path / "seg.nii.gz"
    save_nifti(seg, labels().astype(np.float32) * 0.5, AFFINE)
    assert "non-integer" in check_provided_segmentation(image, seg)


def test_empty_label_map_is_rejected(image, tmp_path):
    seg = tmp_path / "seg.nii.gz"
    save_labels_like(seg, labels((0,)), image)
    assert "labels nothing" in check_provided_segmentation(image, seg)
