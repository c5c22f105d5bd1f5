"""The parametric heart: analytic volumes, mass conservation and the cardiac cycle."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cardiopheno.synth.anatomy import (
    SLICE_SPACING_MM,
    build_heart,
    cycle_shape,
    ellipse_disc_overlap,
    truncated_ellipsoid_volume,
)


def test_truncated_ellipsoid_volume_matches_a_fine_voxel_grid():
    a, c, h = 25.0, 60.0, 15.0
    x = np.arange(-30, 30, 0.25) + 0.125
    z = np.arange(-65, 20, 0.25) + 0.125
    xx, yy = np.meshgrid(x, x, indexing="ij")
    area = np.array([((xx**2 + yy**2) / a**2 <= 1 - (zi / c) ** 2).sum() for zi in z if zi <= h])
    grid = area.sum() * 0.25**3
    assert abs(grid / truncated_ellipsoid_volume(a, c, h) - 1) < 2e-3


@settings(max_examples=25, deadline=None)
@given(rx=st.floats(5, 40), ry=st.floats(5, 40), d=st.floats(0, 50), r=st.floats(5, 40))
def test_ellipse_disc_overlap_matches_pixel_counting(rx, ry, d, r):
    x = np.arange(-100, 100, 0.2) + 0.1
    xx, yy = np.meshgrid(x, x, indexing="ij")
    inside = (((xx + d) / rx) ** 2 + (yy / ry) ** 2 <= 1) & (xx**2 + yy**2 <= r**2)
    counted = inside.sum() * 0.04
    assert abs(ellipse_disc_overlap(rx, ry, d, r) - counted) <= 0.01 * np.pi * rx * ry + 2.0


def test_cycle_starts_at_ed_reaches_es_at_its_frame_and_has_e_and_a_waves():
    shape, es = cycle_shape(heart_rate=60.0, n_frames=50)
    f = shape.filled(np.arange(50) / 50)
    assert f[0] == 1.0 and int(np.argmin(f)) == es and f[es] == 0.0
    per, pfr_e, pfr_a = shape.rates(sv_ml=90.0, rr_ms=1000.0)
    assert 250 < per < 800 and 300 < pfr_e < 1000 and 80 < pfr_a < pfr_e


def test_heart_matches_volume_curves_and_conserves_myocardium():
    shape, es = cycle_shape(70.0, 30)
    f = shape.filled(np.arange(30) / 30)
    lv, rv = 55 + 95 * f, 65 + 100 * f
    heart = build_heart(lv, 110.0, rv, np.random.default_rng(0))
    np.testing.assert_allclose(heart.lv_volume, lv, rtol=1e-9)
    np.testing.assert_allclose(heart.rv_volume, rv, rtol=1e-4)
    # Myocardial shell volume from the fitted radii equals LVM / 1.05 in every frame.
    shell = truncated_ellipsoid_volume(
        heart.a + heart.t, heart.c + 0.6 * heart.t, heart.tau * heart.c
    )
    np.testing.assert_allclose(shell / 1000 - lv, 110.0 / 1.05, rtol=1e-6)
    assert heart.t[es] > heart.t[0]  # the wall thickens in systole
    # The base descends exactly one slice spacing from ED to ES; the apex stays.
    assert abs(heart.z_base[0]) < 1e-9
    assert abs(heart.z_base[es] + SLICE_SPACING_MM) < 1e-9
