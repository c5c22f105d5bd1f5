"""Cross-view agreement of the 4-chamber and short-axis segmentations (qc.crossview)."""

from __future__ import annotations

import numpy as np

from cardiopheno.qc.crossview import ventricle_agreement


def _heart(world: np.ndarray) -> np.ndarray:
    """Labels at world points (3 x N): LV cavity for -30 < x < 0, RV for 0 < x < 30, within
    |y| < 20 and |z| < 30 (mm)."""
    x, y, z = world
    box = (np.abs(y) < 20) & (np.abs(z) < 30)
    return np.where(box & (x > -30) & (x < 0), 1, np.where(box & (x >= 0) & (x < 30), 3, 0))


def _sample(shape, affine):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")).reshape(3, -1)
    world = affine[:3, :3] @ idx + affine[:3, 3:4]
    return _heart(world).reshape(shape).astype(np.uint8)


def _views():
    sa_affine = np.diag([1.25, 1.25, 8.0, 1.0])
    sa_affine[:3, 3] = [-40.0, -40.0, -28.0]
    sa = _sample((64, 64, 8), sa_affine)
    la_affine = np.zeros((4, 4))
    la_affine[:3, 0] = [1.5, 0.0, 0.0]
    la_affine[:3, 1] = [0.0, 0.0, -1.5]
    la_affine[:3, 2] = [0.0, 6.0, 0.0]
    la_affine[:, 3] = [-48.0, 0.3, 48.0, 1.0]
    la = _sample((64, 64, 1), la_affine)[..., 0]
    return sa, sa_affine, la, la_affine


def test_segmentations_of_one_heart_agree_along_the_intersection():
    sa, sa_affine, la, la_affine = _views()
    agree = ventricle_agreement(sa, sa_affine, la, la_affine)
    assert agree.valid
    assert agree.dice["lv"] > 0.95 and agree.dice["rv"] > 0.95


def test_a_long_axis_map_with_lv_and_rv_swapped_disagrees():
    sa, sa_affine, la, la_affine = _views()
    swapped = la.copy()
    swapped[la == 1], swapped[la == 3] = 3, 1
    agree = ventricle_agreement(sa, sa_affine, swapped, la_affine)
    assert agree.dice["lv"] < 0.1 and agree.dice["rv"] < 0.1


def test_parallel_planes_give_no_verdict():
    sa, sa_affine, la, _ = _views()
    flat = sa_affine.copy()
    flat[:3, 3] += [0.0, 0.0, 4.0]  # between two short-axis slices, parallel to them
    agree = ventricle_agreement(sa, sa_affine, la, flat)
    assert not agree.valid
