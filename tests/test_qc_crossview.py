"""Cross-view agreement of the 4-chamber and short-axis segmentations (qc.crossview)."""

from __future__ import annotations

import numpy as np

from cardiopheno.qc.crossview import atrium_agreement, ventricle_agreement
from cardiopheno.qc.views import ViewEvidence, ViewQCThresholds, check_views


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


def _four_chamber(la: np.ndarray, frames: int = 3) -> np.ndarray:
    """A 4-chamber label map X x Y x 1 x T with both atria drawn above the ventricles."""
    out = np.repeat(la[:, :, None, None], frames, axis=3).copy()
    out[20:30, 2:10, 0, :] = 4
    out[34:44, 2:10, 0, :] = 5
    return out


def test_view_qc_masks_the_atria_of_a_four_chamber_map_that_contradicts_the_short_axis():
    sa, sa_affine, la, la_affine = _views()
    evidence = ViewEvidence(
        affines={"la_4ch": la_affine}, sa_labels=sa[..., None], sa_affine=sa_affine
    )
    results, masked = check_views({"la_4ch": _four_chamber(la)}, evidence=evidence)
    verdict = {r.name: r for r in results}
    assert verdict["la_4ch_matches_sa"].passed is True and not masked
    swapped = la.copy()
    swapped[la == 1], swapped[la == 3] = 3, 1
    evidence.affines = {"la_4ch": la_affine}
    results, masked = check_views({"la_4ch": _four_chamber(swapped)}, evidence=evidence)
    verdict = {r.name: r for r in results}
    assert verdict["la_4ch_matches_sa"].passed is False
    assert "LV 0.00" in verdict["la_4ch_matches_sa"].reason
    assert {"LAV_max", "RAV_max", "RAEF"} <= masked


def test_an_implausible_right_atrium_and_an_unstable_left_atrium_are_masked_with_reasons():
    """The issue's case: RAV_max = 12 mL for a 109 mL atrium passed every shape check."""
    _, _, la, _ = _views()
    evidence = ViewEvidence(
        tta={"la_4ch:la": 0.95, "la_4ch:ra": 0.93, "la_2ch:la": 0.41},
        phenotypes={"LAV_max": 65.0, "RAV_max": 12.0, "RAEF": 40.0},
    )
    two = np.zeros((64, 64, 1, 3), np.uint8)
    two[20:30, 2:12] = 1
    results, masked = check_views({"la_4ch": _four_chamber(la), "la_2ch": two}, evidence=evidence)
    verdict = {r.name: r for r in results}
    assert verdict["atria_plausible"].passed is False
    assert "RAV_max 12.0 outside 25-400" in verdict["atria_plausible"].reason
    assert verdict["atria_tta_agreement"].passed is False
    assert "LA in la_2ch 0.41" in verdict["atria_tta_agreement"].reason
    assert verdict["la_4ch_matches_sa"].passed is None  # no short axis given
    assert {"RAV_max", "RAV_min", "RASV", "RAEF", "LAV_max", "LAEF"} <= masked


def test_thresholds_come_from_config():
    th = ViewQCThresholds.from_config({"min_tta_dice": 0.5, "ranges": {"RAV_max": [5, 500]}})
    assert th.min_tta_dice == 0.5 and th.ranges == {"RAV_max": (5.0, 500.0)}


def test_a_few_disagreeing_frames_are_tolerated_many_are_not():
    """Every 4-chamber frame is judged; up to max_crossview_bad_fraction of them may disagree
    (the two cines' phases never match exactly), more fail the check."""
    sa, sa_affine, la, la_affine = _views()
    swapped = la.copy()
    swapped[la == 1], swapped[la == 3] = 3, 1
    cine = _four_chamber(la, frames=20)
    evidence = ViewEvidence(
        affines={"la_4ch": la_affine}, sa_labels=sa[..., None], sa_affine=sa_affine
    )
    cine[:, :, 0, 7] = _four_chamber(swapped, 1)[:, :, 0, 0]
    results, masked = check_views({"la_4ch": cine}, evidence=evidence)
    assert {r.name: r.passed for r in results}["la_4ch_matches_sa"] is True and not masked
    cine[:, :, 0, 8:10] = _four_chamber(swapped, 2)[:, :, 0, :]
    results, masked = check_views({"la_4ch": cine}, evidence=evidence)
    verdict = {r.name: r for r in results}["la_4ch_matches_sa"]
    assert verdict.passed is False and "in 3 of 20 frames (7, 8, 9" in verdict.reason


def _atrium_views(la_z=(30.0, 45.0)):
    """A 4-chamber plane (y = 0.3) and a 2-chamber plane (x = 0.3) meeting along a vertical line,
    each labelling an LA that is |x|, |y| < 15 mm and ``la_z`` in z (world mm); the 2-chamber
    map's LA may be drawn at other heights (``la_z``), the 4-chamber one's stays."""

    def plane(columns, origin, shape=(64, 64)):
        affine = np.eye(4)
        affine[:3, :3] = np.array(columns, float).T
        affine[:3, 3] = origin
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")).reshape(2, -1)
        world = affine[:3, :2] @ idx + affine[:3, 3:4]
        return affine, world

    a4, w4 = plane(([1.5, 0, 0], [0, 0, -1.5], [0, 6.0, 0]), [-48.0, 0.3, 60.0])
    a2, w2 = plane(([0, 1.5, 0], [0, 0, -1.5], [6.0, 0, 0]), [0.3, -48.0, 60.0])

    def atrium(world, z, label):
        x, y, zz = world
        inside = (np.abs(x) < 15) & (np.abs(y) < 15) & (zz > z[0]) & (zz < z[1])
        return np.where(inside, label, 0).reshape(64, 64).astype(np.uint8)

    return atrium(w2, la_z, 1), a2, atrium(w4, (30.0, 45.0), 4), a4


def test_two_and_four_chamber_views_of_one_atrium_agree_along_their_line():
    la2, a2, la4, a4 = _atrium_views()
    agree = atrium_agreement(la2, a2, la4, a4)
    assert agree.valid and agree.dice["la"] > 0.9
    misplaced = atrium_agreement(_atrium_views(la_z=(0.0, 15.0))[0], a2, la4, a4)
    assert misplaced.dice["la"] == 0.0


def test_view_qc_masks_the_left_atrium_when_the_two_views_place_it_apart():
    """A 2-chamber LA drawn on another structure: the LA (both views' volumes feed it) is
    masked with the check's name; the RA, seen in the 4-chamber view alone, is kept."""
    la2, a2, la4, a4 = _atrium_views()
    frames = 4
    four = np.repeat(la4[:, :, None, None], frames, axis=3)
    four[2:6, 2:6] = 5  # a right atrium away from the line
    evidence = ViewEvidence(affines={"la_2ch": a2, "la_4ch": a4})
    two = np.repeat(la2[:, :, None, None], frames, axis=3)
    results, masked = check_views({"la_2ch": two, "la_4ch": four}, evidence=evidence)
    assert {r.name: r.passed for r in results}["la_2ch_matches_la_4ch"] is True
    assert not masked
    wrong = np.repeat(_atrium_views(la_z=(0.0, 15.0))[0][:, :, None, None], frames, axis=3)
    results, masked = check_views({"la_2ch": wrong, "la_4ch": four}, evidence=evidence)
    verdict = {r.name: r for r in results}["la_2ch_matches_la_4ch"]
    assert verdict.passed is False and "2- vs 4-chamber LA" in verdict.reason
    assert "in 4 of 4 frames" in verdict.reason and "LA 0.00" in verdict.reason
    assert {"LAV_max", "LAV_min", "LASV", "LAEF"} <= masked
    assert not any(idp.startswith("RA") for idp in masked)


def test_an_atrium_drawn_far_from_its_ventricle_is_masked_alone():
    """As on M&Ms-2 001 with ghosts: the RA leaves the heart for a ghost at the image edge in a
    few frames, one piece and of a plausible size; only its distance from the RV betrays it."""
    _, _, la, la_affine = _views()
    cine = _four_chamber(la, frames=6)
    evidence = ViewEvidence(affines={"la_4ch": la_affine})
    results, masked = check_views({"la_4ch": cine}, evidence=evidence)
    assert {r.name: r.passed for r in results}["atria_adjoin_ventricles"] is True and not masked
    cine[34:44, 2:10, 0, 2:4] = 0
    cine[0:8, 54:62, 0, 2:4] = 5  # frames 2 and 3: in the image's corner, 36 mm from the RV
    results, masked = check_views({"la_4ch": cine}, evidence=evidence)
    verdict = {r.name: r for r in results}["atria_adjoin_ventricles"]
    assert verdict.passed is False
    assert "RA" in verdict.reason and "frame(s) 2, 3" in verdict.reason
    assert masked == {"RAV_max", "RAV_min", "RASV", "RAEF"}
