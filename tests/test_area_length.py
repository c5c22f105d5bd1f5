"""The atrium's area and length (phenotypes.area_length) on label maps measured by hand, and the
anchor's rasterised line as OpenCV draws it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardiopheno.phenotypes import atrial_function as af
from cardiopheno.phenotypes.area_length import area_length, largest_component, line_pixels
from cardiopheno.phenotypes.registry import SubjectContext, ViewData

PX, PY = 1.5, 2.0  # mm: pixel size along x (rows) and y (columns, the long axis here)
AFFINE = np.diag([PX, PY, 6.0, 1.0])
LONG_AXIS = np.array([0.0, 1.0, 0.0])  # world y: along the columns


@pytest.mark.parametrize(
    ("shape", "p1", "p2", "expected"),
    [
        # (row, column) pixels that cv2.line(img, p1, p2, 1) sets, read from OpenCV 3.4.18 and
        # 4.10.0: a pixel half-way rounds toward the left end point, whichever way it is drawn
        ((4, 12), (0, 0), (10, 1), [(0, c) for c in range(6)] + [(1, c) for c in range(6, 11)]),
        ((4, 12), (10, 1), (0, 0), [(0, c) for c in range(6)] + [(1, c) for c in range(6, 11)]),
        ((12, 4), (1, 10), (0, 0), [(r, 0) for r in range(6)] + [(r, 1) for r in range(6, 11)]),
        # clipped to the image first
        (
            (6, 8),
            (-5, -3),
            (12, 6),
            [(0, 0), (1, 1), (1, 2), (2, 3), (2, 4), (3, 5), (3, 6), (4, 7)],
        ),
        ((5, 5), (-3, 7), (7, -4), [(0, 3), (1, 2), (2, 1), (3, 0)]),
        ((5, 5), (-9, -1), (-1, 9), []),  # misses the image
    ],
)
def test_line_pixels_are_those_opencv_draws(shape, p1, p2, expected):
    got = sorted(map(tuple, line_pixels(p1, p2, shape).tolist()))
    assert got == sorted(expected)


def rectangle(rows=(10, 15), cols=(20, 50), shape=(40, 80)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def test_anchor_length_of_a_rectangle_joins_its_end_pixel_centres():
    """5 x 30 pixels along the long axis: the thirds are 10 whole columns each, the major axis is
    the column direction through row 12, and the line's first and last atrium pixels are columns
    20 and 49: L = 29 x 2.0 mm, A = 150 x 1.5 x 2.0 mm2."""
    area, length = area_length(rectangle(), AFFINE, LONG_AXIS, "anchor")
    assert area == pytest.approx(450.0)
    assert length == pytest.approx(58.0)
    assert af.single_plane(area, length) == pytest.approx(8 / (3 * math.pi) * 450.0**2 / 58.0e3)


def test_sampled_length_of_a_rectangle_reaches_the_pixel_edges():
    """The earlier method samples the line every 0.1 pixel from the top mean (column 44.5): the
    samples that round into the rectangle run from column 19.5 to 49.4."""
    area, length = area_length(rectangle(), AFFINE, LONG_AXIS, "sampled")
    assert area == pytest.approx(450.0)
    assert length == pytest.approx(29.9 * PY, abs=1e-6)


def test_anchor_length_spans_a_notch_the_line_crosses():
    """A notch of 3 x 5 pixels on the axis row, in the middle third (the thirds stay 9 whole
    columns each, so the axis stays on row 12): the anchor measures from the first to the last
    atrium pixel on the line (columns 20 to 49); the sampled method stops at the notch."""
    mask = rectangle()
    mask[11:14, 33:38] = False
    area, length = area_length(mask, AFFINE, LONG_AXIS, "anchor")
    assert area == pytest.approx(135 * PX * PY)
    assert length == pytest.approx(29 * PY)
    _, sampled = area_length(mask, AFFINE, LONG_AXIS, "sampled")
    assert sampled == pytest.approx((49.4 - 37.5) * PY, abs=1e-6)


def test_anchor_keeps_the_largest_four_connected_component():
    """Two blocks touching at a corner are two components for the anchor (scipy's default
    4-connectivity), one for the sampled method (8-connectivity)."""
    mask = np.zeros((12, 12), bool)
    mask[0:4, 0:4] = True
    mask[4:9, 4:9] = True
    assert largest_component(mask).sum() == 25
    assert largest_component(mask, diagonal=True).sum() == 41
    area, _ = area_length(mask, np.eye(4), LONG_AXIS, "anchor")
    assert area == pytest.approx(25.0)


def one_view(mask: np.ndarray, label: int) -> ViewData:
    labels = np.stack([mask, mask], axis=-1)[:, :, None, :].astype(np.uint8) * label
    return ViewData(labels, (PX, PY, 6.0), 20.0, affine=AFFINE)


def sa_along_y(**views) -> SubjectContext:
    """A short-axis stack whose slice normal is world +y (the atria's long axis here)."""
    labels = np.zeros((8, 8, 3, 2), np.uint8)
    labels[2:6, 2:6, :, 0] = 1
    labels[3:5, 3:5, :, 1] = 1
    affine = np.array([[1.0, 0, 0, 0], [0, 0, 10.0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    return SubjectContext(labels, (1.0, 1.0, 10.0), 20.0, affine=affine, views=views)


def test_biplane_volume_uses_the_mean_of_the_two_lengths():
    """LA 5 x 30 pixels in the 2-chamber view (L 58 mm, A 450 mm2), 5 x 21 pixels in the
    4-chamber view (L 40 mm, A 315 mm2): V = 8 / (3 pi) x 450 x 315 / ((58 + 40) / 2)."""
    ctx = sa_along_y(
        la_2ch=one_view(rectangle(), 1),
        la_4ch=one_view(rectangle(cols=(20, 41)), 4),
    )
    values = af.compute(ctx)
    expected = 8 / (3 * math.pi) * 450.0 * 315.0 / ((58.0 + 40.0) / 2) / 1000.0
    assert values["LAV_max"] == pytest.approx(expected)
    assert af.biplane(450.0, 58.0, 315.0, 40.0) == pytest.approx(expected)


def test_the_method_is_chosen_by_config_and_a_wrong_name_is_named():
    views = {"la_2ch": one_view(rectangle(), 1), "la_4ch": one_view(rectangle(), 4)}
    anchor = af.compute(sa_along_y(**views))["LAV_max"]
    ctx = sa_along_y(**views)
    ctx.options = {"atrial_function": {"method": "sampled"}}
    sampled = af.compute(ctx)["LAV_max"]
    assert sampled == pytest.approx(anchor * 58.0 / (29.9 * PY))
    ctx = sa_along_y(**views)
    ctx.options = {"atrial_function": {"method": "cv2"}}
    with pytest.raises(ValueError, match="phenotypes.atrial_function.method.*'cv2'"):
        af.compute(ctx)
