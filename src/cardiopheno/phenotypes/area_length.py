"""One atrium in one frame of a long-axis view: its area and its length, for the area-length volume.

Two ways to measure the length, named by ``phenotypes.atrial_function.method``:

``anchor`` (default): ukbb_cardiac's ``evaluate_atrial_area_length`` (common/cardiac_utils.py,
used by long_axis/eval_atrial_volume.py), step by step, so that its published atrial tables
reproduce from its own segmentations:

1. keep the atrium's largest 4-connected component (``scipy.ndimage.label``'s default, as the
   anchor's ``get_largest_cc``);
2. order its pixels by the world distance of their centres along the long axis (the short-axis
   stack's slice normal, pointing to positive world z);
3. the major axis runs, in pixel indices, from the mean of the bottom third of that order to the
   mean of the top third (thirds cut at ``int(n / 3)`` and ``int(2 n / 3)``);
4. a line is drawn through the top mean, 100 pixels each way along the major axis, its end points
   truncated to whole pixel indices (``int``), and rasterised as OpenCV's ``cv2.line`` does
   (8-connected Bresenham, clipped to the image: :func:`line_pixels`);
5. the length is the world distance between the centres of the first and the last atrium pixel on
   that line, ordered along the long axis; the area is the component's pixel count x pixel area
   (the header's in-plane pixel size).

``sampled`` (this project's earlier method): the largest 8-connected component, the same major
axis, but the line through the top
mean is sampled every 0.1 pixel without truncation and the length is the extent of the run of
atrium samples that contains the top mean. It is not offset by the truncated end points (up to a
pixel sideways) and does not reach across a concave atrium to a lobe the line re-enters, so it
measures the atrium the line actually crosses; its lengths are a fraction of a pixel longer at each
end than the anchor's pixel-centre to pixel-centre distance (2-3 % longer, so volumes a few %
lower); it does not reproduce the anchor's tables.

Both leave a frame unmeasured (NaN) when the atrium is missing, its axis undefined, the line
misses it, or its length is shorter than the radius of a disc of its area (the axis missed a
malformed atrium and A^2 / L would explode; a departure from the anchor that no real atrium meets).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

METHODS = ("anchor", "sampled")
DEFAULT_METHOD = "anchor"
ANCHOR_HALF_LINE_PX = 100  # the anchor draws its line 100 pixels each way from the top mean
SAMPLE_STEP_PX = 0.1  # the sampled method's step along the line


def largest_component(mask: np.ndarray, diagonal: bool = False) -> np.ndarray:
    """The largest 4-connected (8-connected with ``diagonal``) component of a 2D mask (the
    first, in raster order, of equal ones)."""
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)) if diagonal else None)
    if n <= 1:
        return mask.astype(bool)
    sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def world_of(ij: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World coordinates (mm) of in-plane pixel indices (n x 2; slice index 0)."""
    return ij @ affine[:3, :2].T + affine[:3, 3]


def pixel_area_mm2(affine: np.ndarray) -> float:
    return float(np.linalg.norm(np.cross(affine[:3, 0], affine[:3, 1])))


def clip_line(
    width: int, height: int, p1: tuple[int, int], p2: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """OpenCV's ``clipLine`` (Cohen-Sutherland in integers, quotients truncated toward zero):
    the segment p1-p2 ((x, y) = (column, row)) cut to the image, or None when it misses it."""
    (x1, y1), (x2, y2) = p1, p2
    right, bottom = width - 1, height - 1

    def code(x: int, y: int) -> int:
        return (x < 0) + (x > right) * 2 + (y < 0) * 4 + (y > bottom) * 8

    c1, c2 = code(x1, y1), code(x2, y2)
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += int((a - y1) * (x2 - x1) / (y2 - y1))
            y1, c1 = a, code(x1, a) & 3
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += int((a - y2) * (x2 - x1) / (y2 - y1))
            y2, c2 = a, code(x2, a) & 3
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += int((a - x1) * (y2 - y1) / (x2 - x1))
                x1, c1 = a, 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += int((a - x2) * (y2 - y1) / (x2 - x1))
                x2, c2 = a, 0
    if c1 | c2:
        return None
    return (x1, y1), (x2, y2)


def line_pixels(p1: tuple[int, int], p2: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Pixels (row, column) that ``cv2.line(img, p1, p2, 1)`` sets in an image of ``shape``
    (p1, p2 as (x, y) = (column, row)): OpenCV's 8-connected line iterator, drawn left to right,
    after :func:`clip_line`. A step along the minor axis is taken when the error term is
    negative, so a pixel exactly half-way rounds toward the start."""
    height, width = shape
    inside = all(0 <= p[0] < width and 0 <= p[1] < height for p in (p1, p2))
    if not inside:
        clipped = clip_line(width, height, p1, p2)
        if clipped is None:
            return np.zeros((0, 2), dtype=int)
        p1, p2 = clipped
    (x, y), (x2, y2) = p1, p2
    dx, dy = x2 - x, y2 - y
    if dx < 0:  # left to right
        dx, dy, x, y = -dx, -dy, x2, y2
    step_x, step_y = 1, 1 if dy >= 0 else -1
    dy = abs(dy)
    vertical = dy > dx
    major, minor = (dy, dx) if vertical else (dx, dy)
    err = major - 2 * minor
    out = np.empty((major + 1, 2), dtype=int)
    for k in range(major + 1):
        out[k] = (y, x)
        diagonal = err < 0
        err += -2 * minor + (2 * major if diagonal else 0)
        if vertical:
            y += step_y
            x += step_x if diagonal else 0
        else:
            x += step_x
            y += step_y if diagonal else 0
    return out


def anchor_length(
    mask: np.ndarray, top: np.ndarray, major: np.ndarray, affine: np.ndarray, axis: np.ndarray
) -> float:
    """Step 4-5 of the anchor's method (module docstring); NaN when the line misses the atrium."""
    p = top + ANCHOR_HALF_LINE_PX * major
    q = top - ANCHOR_HALF_LINE_PX * major
    # cv2 points are (column, row); int() truncates toward zero, as the anchor's int() does
    line = line_pixels((int(q[1]), int(q[0])), (int(p[1]), int(p[0])), mask.shape)
    hits = line[mask[line[:, 0], line[:, 1]]]
    if not len(hits):
        return math.nan
    world = world_of(hits.astype(float), affine)
    order = np.argsort(world @ axis, kind="stable")
    return float(np.linalg.norm(world[order[-1]] - world[order[0]]))


def sampled_length(
    mask: np.ndarray, top: np.ndarray, major: np.ndarray, affine: np.ndarray
) -> float:
    """The ``sampled`` method's length (module docstring); NaN when the line misses the atrium."""
    reach = int(np.hypot(*mask.shape) / SAMPLE_STEP_PX) + 1  # the whole image
    steps = np.arange(-reach, reach + 1) * SAMPLE_STEP_PX
    pts = top[None, :] + steps[:, None] * major[None, :]
    idx = np.rint(pts).astype(int)
    ok = (idx >= 0).all(axis=1) & (idx[:, 0] < mask.shape[0]) & (idx[:, 1] < mask.shape[1])
    inside = np.zeros(len(steps), bool)
    inside[ok] = mask[idx[ok, 0], idx[ok, 1]]
    if not inside.any():
        return math.nan
    runs, _ = ndimage.label(inside)
    centre = int(np.argmin(np.where(inside, np.abs(steps), np.inf)))
    sel = np.flatnonzero(runs == runs[centre])
    ends = world_of(pts[[sel[0], sel[-1]]], affine)
    return float(np.linalg.norm(ends[1] - ends[0]))


def principal_axis(world: np.ndarray) -> np.ndarray:
    """The atrium's own longest direction: used only when there is no short-axis stack."""
    return np.linalg.svd(world - world.mean(axis=0), full_matrices=False)[2][0]


def area_length(
    mask: np.ndarray,
    affine: np.ndarray,
    long_axis: np.ndarray | None,
    method: str = DEFAULT_METHOD,
    pixel_area: float | None = None,
) -> tuple[float, float]:
    """Area (mm2) and length (mm) of one atrium in one frame (``mask``, X x Y) by ``method``;
    NaN, NaN when not measurable. ``pixel_area`` (mm2) defaults to the affine's; the anchor
    takes it from the header's pixel size (pass ``spacing[0] * spacing[1]``)."""
    if method not in METHODS:
        raise ValueError(f"atrial_function method must be one of {METHODS}, got {method!r}")
    if not mask.any():
        return math.nan, math.nan
    mask = largest_component(mask, diagonal=method == "sampled")
    affine = np.asarray(affine, float)
    ij = np.stack(np.nonzero(mask), axis=1).astype(float)
    world = world_of(ij, affine)
    axis = principal_axis(world) if long_axis is None else np.asarray(long_axis, float)
    order = np.argsort(world @ axis, kind="stable")
    n = len(order)
    if n < 3:
        return math.nan, math.nan
    top = ij[order[int(2 * n / 3) :]].mean(axis=0)
    bottom = ij[order[: int(n / 3)]].mean(axis=0)
    major = top - bottom
    if not np.linalg.norm(major) > 0:
        return math.nan, math.nan
    major /= np.linalg.norm(major)
    if method == "anchor":
        length = anchor_length(mask, top, major, affine, axis)
    else:
        length = sampled_length(mask, top, major, affine)
    area = float(mask.sum()) * (pixel_area_mm2(affine) if pixel_area is None else pixel_area)
    if not length >= math.sqrt(area / math.pi):  # also NaN
        return math.nan, math.nan
    return area, length
