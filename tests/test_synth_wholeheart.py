"""Long-axis training slices resliced from the real whole-heart segmentation (synth.wholeheart)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cardiopheno.segment.data import wholeheart_volumes

WHOLEHEART = Path(__file__).resolve().parents[2] / "shared" / "data" / "wholeheart"
LABELS = WHOLEHEART / "mmwhs_ct_labels.nii.gz"
pytestmark = pytest.mark.skipif(
    not LABELS.is_file(), reason=f"{LABELS} absent (../shared/data is not in a user's clone)"
)


def _centre(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


def test_four_chamber_slices_show_every_chamber_atria_above_the_apex():
    vols = list(wholeheart_volumes(LABELS, "la_4ch", 8, seed=3))
    assert len(vols) == 8
    apex_down = 0
    for v in vols:
        lab = v.label[0]
        assert set(np.unique(lab)) <= {0, 1, 2, 3, 4, 5}
        assert all((lab == k).sum() > 50 for k in (1, 2, 3, 4, 5)), v.volume
        # canonical orientation: the second axis points to the feet, so the ventricles lie at
        # larger j than the atria (59 of 60 slices of seed 3; a steep random tilt may turn one)
        apex_down += _centre(lab == 1)[1] > _centre(lab == 4)[1]
        apex_down += _centre(lab == 3)[1] > _centre(lab == 5)[1]
        assert v.image.shape == v.label.shape and np.isfinite(v.image).all()
        assert 1.4 <= v.spacing_xy[0] <= 2.1
    assert apex_down >= 2 * len(vols) - 1


def test_two_chamber_slices_label_the_left_atrium_only_and_repeat_by_seed():
    a = list(wholeheart_volumes(LABELS, "la_2ch", 3, seed=5))
    b = list(wholeheart_volumes(LABELS, "la_2ch", 3, seed=5))
    for x, y in zip(a, b, strict=True):
        assert set(np.unique(x.label)) == {0, 1}
        assert np.array_equal(x.image, y.image) and np.array_equal(x.label, y.label)
    assert a[0].subject == a[2].subject  # slices grouped for the split
