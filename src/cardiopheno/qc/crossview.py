"""Cross-view agreement: the 4-chamber plane cuts every short-axis slice along a line, and the
two segmentations must label the LV and RV alike along it; the 2- and 4-chamber planes meet
along the LV's long axis, which runs on through the mitral valve into the LA, and both must
label the LA alike along it.

No label is needed: on any subject with both views, a long-axis segmentation that calls the RV
the LV, or an atrium a ventricle, disagrees with the short-axis one where the planes meet. The
points compared are the long-axis pixels whose centres lie within half a pixel of a short-axis
slice's plane (in world space, from both affines), each read in both label maps by nearest
neighbour; agreement is the Dice of each ventricle over those points. Both views must use the
same world frame (one scanner session): a swapped affine convention moves the line, and the
agreement then reads low, which is the safe side for a QC check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# labels shared by the short axis (1 LV cavity, 2 LV myocardium, 3 RV cavity) and seg4_la_4ch
VENTRICLES = {"lv": 1, "rv": 3}
LA_2CH, LA_4CH = 1, 4  # the LA in seg_la_2ch and in seg4_la_4ch
MIN_POINTS = 20  # fewer shared points than this: no verdict (planes nearly parallel, no overlap)


@dataclass
class Agreement:
    """Dice of each ventricle along the planes' intersection, and how many points it used."""

    dice: dict[str, float]
    n_points: int

    @property
    def valid(self) -> bool:
        return self.n_points >= MIN_POINTS


def shared_points(
    sa_shape: tuple[int, int, int],
    sa_affine: np.ndarray,
    la_shape: tuple[int, int],
    la_affine: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays into the short-axis (``i, j, k``) and long-axis (``i, j``) grids of the
    long-axis pixels lying on a short-axis slice plane (within half a long-axis pixel)."""
    ii, jj = np.meshgrid(np.arange(la_shape[0]), np.arange(la_shape[1]), indexing="ij")
    la_vox = np.stack([ii.ravel(), jj.ravel(), np.zeros(ii.size), np.ones(ii.size)])
    world = la_affine @ la_vox
    sa_vox = (np.linalg.inv(sa_affine) @ world)[:3]
    slice_mm = float(np.linalg.norm(sa_affine[:3, 2]))
    pixel_mm = float(np.linalg.norm(la_affine[:3, 0]))
    k = np.rint(sa_vox[2])
    on_plane = np.abs(sa_vox[2] - k) * slice_mm <= 0.5 * pixel_mm
    sa_idx = np.rint(sa_vox[:2])
    inside = (
        on_plane
        & (k >= 0)
        & (k < sa_shape[2])
        & (sa_idx[0] >= 0)
        & (sa_idx[0] < sa_shape[0])
        & (sa_idx[1] >= 0)
        & (sa_idx[1] < sa_shape[1])
    )
    sa_points = np.stack([sa_idx[0], sa_idx[1], k])[:, inside].astype(int)
    la_points = np.stack([ii.ravel(), jj.ravel()])[:, inside]
    return sa_points, la_points


def ventricle_agreement(
    sa_labels: np.ndarray,
    sa_affine: np.ndarray,
    la_labels: np.ndarray,
    la_affine: np.ndarray,
) -> Agreement:
    """Agreement of one short-axis frame (``X x Y x Z``) and one 4-chamber frame (``X x Y``) in
    the seg4_la_4ch convention, both at the same cardiac phase."""
    sa_pts, la_pts = shared_points(sa_labels.shape[:3], sa_affine, la_labels.shape[:2], la_affine)
    a = sa_labels[sa_pts[0], sa_pts[1], sa_pts[2]]
    b = la_labels[la_pts[0], la_pts[1]]
    # only where the short axis sees a heart: its stack covers the ventricles, not the atria,
    # so long-axis labels beyond its slices are not compared
    heart = (a > 0) | np.isin(b, list(VENTRICLES.values()))
    dice = {}
    for key, label in VENTRICLES.items():
        x, y = a[heart] == label, b[heart] == label
        total = int(x.sum() + y.sum())
        dice[key] = float(2 * (x & y).sum() / total) if total else float("nan")
    return Agreement(dice, int(a.size))


def atrium_agreement(
    la2_labels: np.ndarray,
    la2_affine: np.ndarray,
    la4_labels: np.ndarray,
    la4_affine: np.ndarray,
) -> Agreement:
    """Agreement of the LA in one 2-chamber frame (``X x Y``, seg_la_2ch) and one 4-chamber frame
    (``X x Y``, seg4_la_4ch) at the same cardiac phase: Dice over the 2-chamber pixels that lie
    on the 4-chamber plane (``nan`` where neither view has LA there)."""
    la4_pts, la2_pts = shared_points(
        (*la4_labels.shape[:2], 1), la4_affine, la2_labels.shape[:2], la2_affine
    )
    a = la4_labels[la4_pts[0], la4_pts[1]] == LA_4CH
    b = la2_labels[la2_pts[0], la2_pts[1]] == LA_2CH
    total = int(a.sum() + b.sum())
    dice = float(2 * (a & b).sum() / total) if total else float("nan")
    return Agreement({"la": dice}, int(a.size))
