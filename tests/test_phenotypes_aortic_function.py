"""Aortic areas and distensibility from an ``ao`` label map: known shapes, missing inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardiopheno import ASCENDING_AORTA, DESCENDING_AORTA
from cardiopheno.io.nifti import save_nifti
from cardiopheno.phenotypes import (
    SubjectContext,
    ViewData,
    compute_phenotypes,
    context_from_files,
    reasons_text,
    resolve_families,
    view_from_files,
)

AORTIC = [
    "AAo_max_area", "AAo_min_area", "AAo_distensibility",
    "DAo_max_area", "DAo_min_area", "DAo_distensibility",
]  # fmt: skip


def rectangles(n_frames: int = 10) -> np.ndarray:
    """AAo 20 x 20 px at diastole widening to 20 x 22 at systole; DAo 12 x 12 to 12 x 13."""
    labels = np.zeros((64, 64, 1, n_frames), np.uint8)
    widen = np.array([0, 0, 1, 2, 2, 1, 1, 0, 0, 0])[:n_frames]
    for t, k in enumerate(widen):
        labels[5:25, 5 : 25 + k, 0, t] = ASCENDING_AORTA
        labels[40:52, 40 : 52 + (k + 1) // 2, 0, t] = DESCENDING_AORTA
    return labels


def ao_context(labels, covariates, spacing=(1.5, 1.5, 8.0)) -> SubjectContext:
    return SubjectContext(
        None, None, covariates=covariates, views={"ao": ViewData(labels, spacing)}
    )


def test_rectangles_of_known_area_change_give_known_distensibility():
    ctx = ao_context(rectangles(), {"central_pp": 40.0})
    out = compute_phenotypes(ctx, resolve_families(["aortic_function"]))
    px2 = 1.5 * 1.5
    assert out["AAo_min_area"] == pytest.approx(400 * px2)
    assert out["AAo_max_area"] == pytest.approx(440 * px2)
    assert out["AAo_distensibility"] == pytest.approx(40 / (400 * 40) * 1000)  # 2.5e-3 /mmHg
    assert out["DAo_min_area"] == pytest.approx(144 * px2)
    assert out["DAo_max_area"] == pytest.approx(156 * px2)
    assert out["DAo_distensibility"] == pytest.approx(12 / (144 * 40) * 1000)
    assert ctx.reasons == {}


def test_disc_growing_by_a_known_fraction_matches_the_analytic_distensibility():
    # radius 12 -> 13.5 mm on 0.25 mm pixels: the pixel count is close to pi r^2
    n, px = 160, 0.25
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rho = np.hypot(ii - 80.3, jj - 79.6) * px
    radii = 12.0 + 1.5 * np.sin(np.linspace(0.0, np.pi, 13)) ** 2  # frame 6 at 13.5 mm
    labels = np.stack([(rho <= r).astype(np.uint8) for r in radii], axis=-1)[:, :, None, :]
    labels[:10, :10] = DESCENDING_AORTA  # a square descending aorta, constant
    pp = 50.0
    out = compute_phenotypes(
        ao_context(labels, {"central_pp": pp}, (px, px, 8.0)), resolve_families(["aortic_function"])
    )
    a_min, a_max = np.pi * 12.0**2, np.pi * 13.5**2
    assert out["AAo_min_area"] == pytest.approx(a_min, rel=5e-3)
    assert out["AAo_max_area"] == pytest.approx(a_max, rel=5e-3)
    analytic = (a_max - a_min) / (a_min * pp) * 1000
    assert out["AAo_distensibility"] == pytest.approx(analytic, rel=0.02)
    assert out["DAo_distensibility"] == 0.0


@pytest.mark.parametrize(
    ("covariates", "reason"),
    [
        ({}, "no central pulse pressure"),
        ({"central_pp": float("nan")}, "no central pulse pressure"),
        ({"central_pp": 8.0}, "central pulse pressure 8 mmHg < 10 mmHg"),
    ],
)
def test_missing_or_low_pressure_gives_nan_distensibility_with_reason(covariates, reason):
    ctx = ao_context(rectangles(), covariates)
    out = compute_phenotypes(ctx, resolve_families(["aortic_function"]))
    for v in ("AAo", "DAo"):
        assert math.isnan(out[f"{v}_distensibility"])
        assert ctx.reasons[f"{v}_distensibility"].startswith(reason)
        assert out[f"{v}_max_area"] > out[f"{v}_min_area"] > 0  # areas need no pressure
    assert reasons_text(ctx).startswith(f"AAo_distensibility, DAo_distensibility: {reason}")


def test_subject_without_the_view_gives_nan_with_reason_and_keeps_short_axis_values():
    sa = np.zeros((20, 20, 3, 2), np.uint8)
    sa[5:10, 5:10, :, 0] = 1
    sa[6:9, 6:9, :, 1] = 1
    ctx = SubjectContext(sa, (1.0, 1.0, 10.0), covariates={"central_pp": 40.0})
    out = compute_phenotypes(ctx, resolve_families(["lv_function", "aortic_function"]))
    assert out["LVEDV"] == pytest.approx(0.75)
    assert all(math.isnan(out[n]) for n in AORTIC)
    assert {ctx.reasons[n] for n in AORTIC} == {"no ao view"}
    assert "LVEDV" not in ctx.reasons


def test_subject_with_only_the_aortic_view_gets_short_axis_nan_with_reason():
    ctx = ao_context(rectangles(), {"central_pp": 40.0})
    out = compute_phenotypes(ctx, resolve_families(["lv_function", "aortic_function"]))
    assert math.isnan(out["LVEDV"]) and ctx.reasons["LVEDV"] == "no sa view"
    assert out["AAo_distensibility"] == pytest.approx(2.5)


def test_vessel_missing_from_the_labels_gives_nan_with_reason():
    labels = rectangles()
    labels[labels == DESCENDING_AORTA] = 0
    ctx = ao_context(labels, {"central_pp": 40.0})
    out = compute_phenotypes(ctx, resolve_families(["aortic_function"]))
    assert out["AAo_distensibility"] == pytest.approx(2.5)
    assert all(math.isnan(out[f"DAo_{k}"]) for k in ("max_area", "min_area", "distensibility"))
    assert ctx.reasons["DAo_min_area"] == "no DAo label"


def test_views_read_from_files_give_the_same_values(tmp_path):
    labels = rectangles()
    affine = np.diag([1.5, 1.5, 8.0, 1.0])
    save_nifti(tmp_path / "seg_ao.nii.gz", labels, affine, (1.5, 1.5, 8.0, 9.0))
    sa = np.zeros((20, 20, 3, 2), np.uint8)
    sa[5:10, 5:10, :, :] = 1
    save_nifti(tmp_path / "seg_sa.nii.gz", sa, np.diag([1.0, 1.0, 10.0, 1.0]), (1, 1, 10, 30))
    view = view_from_files(tmp_path / "seg_ao.nii.gz")
    assert view.frame_interval_ms == pytest.approx(9.0) and view.spacing[:2] == (1.5, 1.5)
    ctx = context_from_files(
        tmp_path / "seg_sa.nii.gz", covariates={"central_pp": 40}, views={"ao": view}
    )
    out = compute_phenotypes(ctx, resolve_families(["aortic_function"]))
    assert out["AAo_distensibility"] == pytest.approx(2.5)


def test_family_on_the_synthetic_truth_labels_reproduces_the_voxelised_truth():
    from cardiopheno.synth.aorta import simulate_aorta
    from cardiopheno.synth.population import sample_population

    row = sample_population(3, seed=2).iloc[1]
    s = simulate_aorta(row, 2, 1, n_frames=40)
    view = ViewData(s.labels, s.zooms[:3], s.zooms[3])
    ctx = SubjectContext(None, None, covariates={"central_pp": row["central_pp"]})
    ctx.views["ao"] = view
    out = compute_phenotypes(ctx, resolve_families(["aortic_function"]))
    for name in AORTIC:
        assert out[name] == pytest.approx(s.truth[name], rel=1e-9)
