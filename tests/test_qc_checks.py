"""Every QC check passes a clean phantom and flags the fault it is meant to find."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.io.nifti import Cine
from cardiopheno.phenotypes._phantom import make_phantom, phantom_image
from cardiopheno.qc.checks import QCThresholds
from cardiopheno.qc.image import check_image
from cardiopheno.qc.phenotype import check_phenotypes, robust_outliers
from cardiopheno.qc.segmentation import check_segmentation, check_tta

TH = QCThresholds()
SPACING = (1.8, 1.8, 8.0)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(shape_xy=(72, 72), n_slices=10, n_frames=20, spacing=SPACING)


def _by_name(results):
    return {r.name: r for r in results}


def _cine(data, spacing=SPACING):
    return Cine(data.astype(np.float32), np.diag([*spacing, 1.0]), spacing, 30.0)


def test_clean_image_passes_every_image_check(phantom):
    res = _by_name(check_image(_cine(phantom_image(phantom.labels)), TH))
    assert all(r.passed for r in res.values()), res


@pytest.mark.parametrize(
    ("check", "fault"),
    [
        ("img_dims", lambda d, s: (d[:, :, :2], s)),
        ("img_spacing", lambda d, s: (d, (0.05, 0.05, 8.0))),
        ("img_spacing", lambda d, s: (d, (1.8, 1.8, 40.0))),
        ("img_finite", lambda d, s: (np.where(np.arange(d.shape[0])[:, None, None, None] == 3, np.nan, d), s)),
        ("img_intensity", lambda d, s: (np.zeros_like(d) + 7.0, s)),
        ("img_intensity", lambda d, s: (np.concatenate([d[..., :5], 0 * d[..., 5:6], d[..., 6:]], 3), s)),
        ("img_intensity", lambda d, s: (np.minimum(d, 0.3), s)),
        ("img_frames", lambda d, s: (d[..., :3], s)),
        ("img_noise", lambda d, s: (np.hypot(d + np.random.default_rng(1).normal(0, 0.6, d.shape), np.random.default_rng(2).normal(0, 0.6, d.shape)), s)),
    ],
)  # fmt: skip
def test_image_fault_is_flagged_with_a_reason(phantom, check, fault):
    data, spacing = fault(phantom_image(phantom.labels), SPACING)
    res = _by_name(check_image(_cine(data, spacing), TH))
    assert res[check].passed is False and res[check].reason


def test_clean_segmentation_passes_every_check(phantom):
    res = check_segmentation(phantom.labels, SPACING, TH)
    assert all(r.passed for r in res), [r for r in res if not r.passed]


def _drop_lv(labels, slices):
    out = labels.copy()
    for z in slices:
        sl = out[:, :, z]
        sl[sl == LV_CAVITY] = LV_MYOCARDIUM
    return out


def _fragment(labels):
    out = labels.copy()
    out[2:14, 2:14, :, :] = LV_CAVITY  # an island far from the heart on every slice
    return out


def _open_myo(labels):
    out = labels.copy()
    nx = out.shape[0]
    for z in range(out.shape[2]):
        sl = out[:, :, z]
        half = (sl == LV_MYOCARDIUM) & (np.arange(nx)[:, None] > nx // 2)
        sl[half] = 0  # lateral half of the myocardial ring removed
    return out


def _truncate_apex(labels):
    return labels[:, :, :4].copy()  # the stack stops mid-ventricle


def _lose_base(labels):
    out = labels.copy()
    for z in range(1, 4):  # basal LV slices (slice 0 is above the base): shrink the cavity
        sl = out[:, :, z]
        cav = sl == LV_CAVITY
        sl[cav] = LV_MYOCARDIUM
        idx = np.argwhere(cav)
        centre = idx.mean(axis=0).astype(int)
        sl[centre[0] - 1 : centre[0] + 2, centre[1] - 1 : centre[1] + 2] = LV_CAVITY
    return out


def _cut_base(labels):
    return labels[:, :, 3:].copy()  # the stack starts inside the ventricle


def _shift_slice(labels):
    out = labels.copy()
    out[:, :, 4] = np.roll(labels[:, :, 4], (5, 2), axis=(0, 1))  # 9.7 mm breath-hold shift
    return out


def _spike(labels):
    out = labels.copy()
    out[..., 7] = out[..., 0]  # frame 7 pasted from ED: a jump in the volume curve
    return out


def _myo_varies(labels):
    out = labels.copy()
    for t in range(0, out.shape[3], 2):
        fr = out[..., t]
        fr[fr == LV_MYOCARDIUM] = 0  # myocardium lost on every other frame
    return out


def _no_rv(labels):
    out = labels.copy()
    out[out == RV_CAVITY] = 0
    return out


@pytest.mark.parametrize(
    ("check", "fault"),
    [
        ("seg_classes", _no_rv),
        ("seg_lv_coverage", lambda lab: _drop_lv(lab, [3, 4, 5])),
        ("seg_components", _fragment),
        ("seg_myo_encloses_lv", _open_myo),
        ("seg_base_apex", _truncate_apex),
        ("seg_base_apex", _lose_base),
        ("seg_base_apex", _cut_base),
        ("seg_slice_alignment", _shift_slice),
        ("seg_frame_consistency", _spike),
        ("seg_frame_consistency", _myo_varies),
    ],
)
def test_segmentation_fault_is_flagged_with_a_reason(phantom, check, fault):
    res = _by_name(check_segmentation(fault(phantom.labels), SPACING, TH))
    assert res[check].passed is False and res[check].reason


def test_lv_coverage_reason_is_readable(phantom):
    res = _by_name(check_segmentation(_drop_lv(phantom.labels, [3, 4, 5]), SPACING, TH))
    assert "LV absent on 3 of 10 slices" in res["seg_lv_coverage"].reason


def test_segmentation_without_lv_fails_and_skips_the_rest(phantom):
    res = _by_name(check_segmentation(np.zeros_like(phantom.labels), SPACING, TH))
    assert res["seg_classes"].passed is False
    assert res["seg_components"].passed is None


def test_tta_agreement_passes_when_off_and_flags_low_dice():
    assert check_tta({"tta_dice_lv": math.nan}, TH).passed is True
    assert check_tta({"tta_dice_lv": 0.95, "tta_dice_myo": 0.9, "tta_dice_rv": 0.9}, TH).passed
    low = check_tta({"tta_dice_lv": 0.95, "tta_dice_myo": 0.6, "tta_dice_rv": 0.9}, TH)
    assert low.passed is False and "myo 0.60" in low.reason


GOOD = {"LVEDV": 150, "LVESV": 60, "LVEF": 60, "LVM": 110, "RVEDV": 160, "RVESV": 70,
        "RVEF": 56, "LVSV": 90, "RVSV": 90}  # fmt: skip


def test_phenotype_checks_pass_clean_values():
    assert all(r.passed for r in check_phenotypes(GOOD, TH))


def test_phenotype_range_and_stroke_volume_faults_are_flagged():
    res = _by_name(check_phenotypes({**GOOD, "LVEF": 95.0}, TH))
    assert res["pheno_ranges"].passed is False and "LVEF 95.0" in res["pheno_ranges"].reason
    res = _by_name(check_phenotypes({**GOOD, "RVSV": 20.0}, TH))
    assert res["pheno_sv_agreement"].passed is False


def test_robust_outliers_use_only_qc_passed_subjects(rng):
    x = rng.normal(150, 20, 200)
    x[0] = 400.0  # outlier
    x[1:20] = 2000.0  # QC failures that must not widen the spread
    df = pd.DataFrame({"LVEDV": x})
    ref = pd.Series(True, index=df.index)
    ref[1:20] = False
    passed, reasons = robust_outliers(df, ref, TH)
    assert not passed[0] and "LVEDV 400.0" in reasons[0]
    assert passed[20:].mean() > 0.99
