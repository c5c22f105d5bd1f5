"""Every phenotype family on shapes with known volumes, rates and thicknesses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.phenotypes import SubjectContext, compute_phenotypes, resolve_families
from cardiopheno.phenotypes._phantom import make_phantom
from cardiopheno.phenotypes.volume_curve import compute as volume_curve


def test_lv_and_rv_volumes_equal_voxel_counts_times_voxel_volume():
    labels = np.zeros((20, 20, 4, 3), np.uint8)
    labels[:5, :4, :2, 0] = LV_CAVITY  # 40 voxels at frame 0
    labels[:3, :4, :2, 1] = LV_CAVITY  # 24 at frame 1 (ES)
    labels[:4, :4, :2, 2] = LV_CAVITY  # 32 at frame 2
    labels[10:13, :, 0, 0] = LV_MYOCARDIUM  # 60 voxels at ED
    labels[15:20, :2, :, 0] = RV_CAVITY  # 40 at frame 0
    labels[15:20, :1, :, 1] = RV_CAVITY  # 20 at frame 1
    ctx = SubjectContext(labels, (1.5, 2.0, 8.0), 40.0, {"height_cm": 180, "weight_kg": 80})
    v = compute_phenotypes(ctx, resolve_families(["lv_function", "rv_function"]))
    vox = 1.5 * 2.0 * 8.0 / 1000
    assert (v["ED_frame"], v["ES_frame"]) == (0, 1)
    assert v["LVEDV"] == pytest.approx(40 * vox)
    assert v["LVESV"] == pytest.approx(24 * vox)
    assert v["LVSV"] == pytest.approx(16 * vox)
    assert v["LVEF"] == pytest.approx(40.0)
    assert v["LVM"] == pytest.approx(1.05 * 60 * vox)
    assert v["HR"] == pytest.approx(60000 / (3 * 40.0))
    assert v["LVCO"] == pytest.approx(16 * vox * 500 / 1000)
    assert v["RVEDV"] == pytest.approx(40 * vox) and v["RVESV"] == pytest.approx(20 * vox)
    assert v["RVEF"] == pytest.approx(50.0)
    bsa = math.sqrt(180 * 80 / 3600)
    assert v["BSA"] == pytest.approx(bsa)
    assert v["LVEDVi"] == pytest.approx(40 * vox / bsa)
    assert v["LVMi"] == pytest.approx(1.05 * 60 * vox / bsa)


def test_ed_frame_first_reads_frame_zero_even_when_it_is_not_the_largest():
    p = make_phantom(
        shape_xy=(64, 64), n_frames=10, spacing=(2.0, 2.0, 8.0), r_ed_mm=20, r_es_mm=14
    )
    labels = np.roll(p.labels, 3, axis=3)  # the largest volume is now frame 3
    fams = resolve_families(["lv_function"])
    default = compute_phenotypes(SubjectContext(labels, p.spacing, 20.0), fams)
    first = compute_phenotypes(SubjectContext(labels, p.spacing, 20.0, ed_frame_mode="first"), fams)
    assert default["ED_frame"] == 3 and first["ED_frame"] == 0
    assert first["LVEDV"] < default["LVEDV"]


def test_lv_volume_of_disc_stack_matches_analytic():
    p = make_phantom(shape_xy=(96, 96), n_frames=12, spacing=(1.25, 1.25, 8.0), rv=False)
    ctx = SubjectContext(p.labels, p.spacing, 30.0)
    analytic = p.analytic_cavity_volume_ml()
    measured = ctx.lv_volume_curve
    np.testing.assert_allclose(measured, analytic, rtol=0.02)
    v = compute_phenotypes(ctx, resolve_families(["lv_function"]))
    assert v["LVEF"] == pytest.approx(
        100 * (analytic.max() - analytic.min()) / analytic.max(), abs=1.0
    )


def test_missing_covariates_and_timing_give_nan_not_errors():
    p = make_phantom(
        shape_xy=(64, 64), n_frames=10, spacing=(2.0, 2.0, 8.0), r_ed_mm=20, r_es_mm=14
    )
    ctx = SubjectContext(p.labels, p.spacing, None, {})
    v = compute_phenotypes(ctx, resolve_families())
    for k in ("HR", "LVCO", "BSA", "LVEDVi", "RVSVi", "LV_PER", "LV_PFR_E"):
        assert math.isnan(v[k]), k
    assert v["LVEDV"] > 0


def _curve_context(volumes_ml: np.ndarray, interval_ms: float) -> SubjectContext:
    """A 1-slice label map whose LV voxel count per frame is exactly volumes_ml (1 mL voxels)."""
    n = int(np.ceil(volumes_ml.max()))
    labels = np.zeros((n, 1, 1, volumes_ml.size), np.uint8)
    for t, v in enumerate(np.rint(volumes_ml).astype(int)):
        labels[:v, 0, 0, t] = LV_CAVITY
    return SubjectContext(labels, (10.0, 10.0, 10.0), interval_ms)


def test_volume_curve_rates_match_analytic_derivative():
    n, interval = 50, 20.0  # 1 s cycle
    t = np.arange(n) * interval / 1000
    # ED at 0, ejection by a cosine (peak rate pi*A/T_s), E and A filling bumps
    edv, sv, ts = 1200.0, 600.0, 0.35
    v = np.empty(n)
    sys = t <= ts
    v[sys] = edv - sv * 0.5 * (1 - np.cos(np.pi * t[sys] / ts))
    d = ~sys
    e = 0.7 * sv * 0.5 * (1 - np.cos(np.pi * np.clip((t[d] - ts) / 0.2, 0, 1)))
    a = 0.3 * sv * 0.5 * (1 - np.cos(np.pi * np.clip((t[d] - 0.8) / 0.2, 0, 1)))
    v[d] = edv - sv + e + a
    out = volume_curve(_curve_context(v, interval))
    assert out["LV_PER"] == pytest.approx(np.pi * sv / 2 / ts, rel=0.05)
    assert out["LV_PFR_E"] == pytest.approx(np.pi * 0.7 * sv / 2 / 0.2, rel=0.08)
    assert out["LV_PFR_A"] == pytest.approx(np.pi * 0.3 * sv / 2 / 0.2, rel=0.1)


def test_volume_curve_without_atrial_kick_gives_nan_pfr_a():
    n, interval = 30, 33.0
    t = np.arange(n) / n
    v = 1000 + 400 * np.cos(2 * np.pi * t)  # one smooth filling wave
    out = volume_curve(_curve_context(v, interval))
    assert math.isnan(out["LV_PFR_A"]) and out["LV_PFR_E"] > 0


@pytest.mark.parametrize("pixel", [1.0, 1.8])
def test_annulus_gives_known_thickness_in_every_segment(pixel):
    p = make_phantom(
        shape_xy=(int(140 / pixel),) * 2,
        n_slices=9,
        n_frames=2,
        spacing=(pixel, pixel, 8.0),
        wall_mm=8.0,
        apex_taper=False,
    )
    v = compute_phenotypes(SubjectContext(p.labels, p.spacing, 20.0), resolve_families())
    for k in range(1, 17):
        assert v[f"WT_AHA_{k}"] == pytest.approx(8.0, abs=pixel), k
    assert v["WT_global"] == pytest.approx(8.0, abs=0.3)
    assert v["WT_mean"] == pytest.approx(8.0, abs=0.3)
    assert 8.0 <= v["WT_max"] <= 8.0 + pixel


@pytest.mark.parametrize("septum_angle", [np.pi, 0.7])
def test_thicker_septum_shows_in_septal_segments(septum_angle):
    p = make_phantom(
        shape_xy=(80, 80),
        n_slices=9,
        n_frames=2,
        spacing=(1.8, 1.8, 8.0),
        wall_mm=7.0,
        septal_extra_mm=5.0,
        septum_angle=septum_angle,
        apex_taper=False,
    )
    v = compute_phenotypes(SubjectContext(p.labels, p.spacing, 20.0), resolve_families())
    septal = (2, 3, 8, 9, 14)
    for k in septal:
        assert v[f"WT_AHA_{k}"] > 10.5, k
    for k in (4, 5, 6, 10, 11, 12, 16):  # far from the septum
        assert v[f"WT_AHA_{k}"] == pytest.approx(7.0, abs=1.8), k
    assert v["WT_max"] > 11.0


def test_anterior_side_follows_the_affine():
    """Flipping the in-plane y axis in the affine swaps anterior and inferior segments."""
    p = make_phantom(
        shape_xy=(80, 80), n_slices=6, n_frames=2, spacing=(1.8, 1.8, 8.0), wall_mm=7.0,
        apex_taper=False,
    )  # fmt: skip
    labels = p.labels.copy()
    # thicken the wall on the +y side only (x-axis septum at pi: +y is 90 degrees from it)
    xx, yy = np.meshgrid(np.arange(80) - 39.5, np.arange(80) - 39.5, indexing="ij")
    ring = (np.hypot(xx, yy) * 1.8 < 26 + 7 + 5) & (yy * 1.8 > 20) & (np.abs(xx) * 1.8 < 10)
    for z in range(6):
        for t in range(2):
            sl = labels[..., z, t]
            sl[ring & (sl == 0)] = LV_MYOCARDIUM
    fams = resolve_families(["wall_thickness"])
    up = compute_phenotypes(SubjectContext(labels, p.spacing, 20.0), fams)
    down = compute_phenotypes(
        SubjectContext(labels, p.spacing, 20.0, affine=np.diag([1.8, -1.8, 8.0, 1.0])), fams
    )
    assert up["WT_AHA_7"] > up["WT_AHA_10"] + 1  # +y anterior: mid anterior thick
    assert down["WT_AHA_10"] > down["WT_AHA_7"] + 1  # +y inferior: mid inferior thick
