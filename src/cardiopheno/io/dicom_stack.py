"""Stacking the images of the chosen series into one cine, X x Y x slices x frames, with its
affine and frame interval (cardiopheno.io.dicom).

Geometry follows the DICOM standard (PS3.3 C.7.6.2.1.1) and the NIfTI-1 convention:

- voxel index ``i`` runs along a row (column index, ImageOrientationPatient[:3], step PixelSpacing[1]),
  ``j`` down a column (row index, ImageOrientationPatient[3:], step PixelSpacing[0]), ``k`` over
  slices sorted by their ImagePositionPatient projected on the slice normal (row x column cosines),
  ``t`` over frames sorted by TriggerTime;
- the data array is X x Y x slices x frames with X = columns;
- DICOM patient coordinates are LPS, NIfTI world coordinates RAS: the affine's first two rows change
  sign. The third affine column is the measured step between successive slice positions, so every
  voxel centre lands exactly on the ImagePositionPatient of its slice; pixdim[3] is that slice
  *spacing* (never SliceThickness); pixdim[4] is the frame interval in ms.

We stack slices by hand because neither pydicom nor nibabel assembles a multi-slice cine
(nibabel.nicom covers Siemens mosaics only) and dcm2niix is an external binary whose output naming
and 4D ordering we would have to reverse-engineer per vendor.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from cardiopheno.io.dicom_headers import DicomConversionError, DicomImage, read_pixels
from cardiopheno.io.dicom_series import DicomOptions
from cardiopheno.io.nifti import Cine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DicomCine:
    """A stacked cine with where each image came from (file names and instance numbers only)."""

    data: np.ndarray  # X x Y x slices x frames
    affine: np.ndarray  # voxel (i, j, k) -> RAS mm
    spacing: tuple[float, float, float]  # mm: column step, row step, slice spacing
    frame_interval_ms: float | None
    frame_interval_source: str  # "trigger_time" | "nominal_interval" | "unknown"
    instance_numbers: np.ndarray  # slices x frames, -1 where absent
    trigger_times_ms: np.ndarray  # slices x frames, NaN where absent
    sources: np.ndarray  # slices x frames: file name (inside the folder or zip)
    series_descriptions: tuple[str, ...]

    def to_cine(self) -> Cine:
        return Cine(self.data, self.affine, self.spacing, self.frame_interval_ms)


def stack_images(images: list[DicomImage], options: DicomOptions, label: str) -> DicomCine:
    """One cine from the images of the chosen series; DicomConversionError (prefixed by
    ``label``) when they do not form one evenly spaced stack of complete slices."""
    ref = images[0]
    _check_one_plane(images, options, label)
    normal = np.cross(ref.orientation[:3], ref.orientation[3:])
    normal /= np.linalg.norm(normal)
    slices = _group_slices(images, normal, label)
    times, inst, sources = _frame_tables(slices)
    interval, interval_source = _frame_interval(times, sources, ref, label)
    affine, step = _stack_affine(slices, ref, normal, options, label)
    ps_row, ps_col = ref.pixel_spacing
    descriptions = tuple(dict.fromkeys(img.series_description for s in slices for img in s))
    return DicomCine(
        data=_pixel_volume(slices),
        affine=affine,
        spacing=(ps_col, ps_row, float(np.linalg.norm(step))),
        frame_interval_ms=interval,
        frame_interval_source=interval_source,
        instance_numbers=inst,
        trigger_times_ms=times,
        sources=sources,
        series_descriptions=descriptions,
    )


def _check_one_plane(images: list[DicomImage], options: DicomOptions, label: str) -> None:
    """Every image has the first one's orientation, matrix size and pixel spacing."""
    ref = images[0]
    for img in images[1:]:
        if np.max(np.abs(img.orientation - ref.orientation)) > options.orientation_tolerance:
            raise DicomConversionError(
                f"{label}: images {ref.source} and {img.source} differ in ImageOrientationPatient: "
                "the selected series do not form one short-axis stack"
            )
        if img.shape != ref.shape or not np.allclose(
            img.pixel_spacing, ref.pixel_spacing, atol=1e-4
        ):
            raise DicomConversionError(
                f"{label}: images {ref.source} and {img.source} differ in matrix size or pixel spacing"
            )


def _group_slices(
    images: list[DicomImage], normal: np.ndarray, label: str
) -> list[list[DicomImage]]:
    """The images of each slice (along ``normal``) in frame order; every slice as many frames."""
    proj = np.array([img.position @ normal for img in images])
    slice_of = _cluster_positions(proj, tol=0.05)
    slices = []
    for k in range(int(slice_of.max()) + 1):
        members = [img for img, s in zip(images, slice_of, strict=True) if s == k]
        members = _latest_series(members, k, label)
        slices.append(sorted(members, key=_frame_sort_key))
    counts = [len(s) for s in slices]
    if len(set(counts)) != 1:
        raise DicomConversionError(
            f"{label}: slices have different numbers of frames {counts} (along the slice normal); "
            "a slice is incomplete or the folder mixes series"
        )
    return slices


def _latest_series(members: list[DicomImage], k: int, label: str) -> list[DicomImage]:
    """A slice acquired in more than one series (UK Biobank repeats a slice that failed): the
    images of the series acquired last (highest SeriesNumber), as the UK Biobank pipeline does."""
    series = {img.series_key for img in members}
    if len(series) <= 1:
        return members
    latest = max(
        series,
        key=lambda key: max((i.series_number or -1) for i in members if i.series_key == key),
    )
    log.info(
        "%s: slice %d found in %d series; keeping the latest (%s)",
        label,
        k,
        len(series),
        next(i.series_description for i in members if i.series_key == latest) or "",
    )
    return [img for img in members if img.series_key == latest]


def _cluster_positions(projections: np.ndarray, tol: float) -> np.ndarray:
    """Slice index (0..n-1 along the normal) of each image from its projected position."""
    order = np.argsort(projections, kind="stable")
    labels = np.empty(len(projections), dtype=int)
    current, last = 0, None
    for idx in order:
        if last is not None and projections[idx] - last > tol:
            current += 1
        labels[idx] = current
        last = projections[idx]
    return labels


def _frame_sort_key(img: DicomImage) -> tuple:
    return (
        img.trigger_time if img.trigger_time is not None else np.inf,
        img.instance_number if img.instance_number is not None else np.iinfo(np.int64).max,
        _natural_key(img.source),
    )


def _natural_key(text: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _frame_tables(
    slices: list[list[DicomImage]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slices x frames: trigger times (NaN where absent), instance numbers (-1), file names."""
    n_slices, n_frames = len(slices), len(slices[0])
    times = np.full((n_slices, n_frames), np.nan)
    inst = np.full((n_slices, n_frames), -1, dtype=np.int64)
    sources = np.empty((n_slices, n_frames), dtype=object)
    for k, members in enumerate(slices):
        for t, img in enumerate(members):
            if img.trigger_time is not None:
                times[k, t] = img.trigger_time
            if img.instance_number is not None:
                inst[k, t] = img.instance_number
            sources[k, t] = img.source
    return times, inst, sources


def _frame_interval(
    times: np.ndarray, sources: np.ndarray, ref: DicomImage, label: str
) -> tuple[float | None, str]:
    """The frame interval in ms and where it came from ("trigger_time", "nominal_interval",
    "unknown"); two frames of a slice at one TriggerTime are an error."""
    n_frames = times.shape[1]
    if np.all(np.isfinite(times)) and n_frames > 1:
        steps = np.diff(times, axis=1)
        if np.any(steps <= 0):
            k, t = np.argwhere(steps <= 0)[0]
            raise DicomConversionError(
                f"{label}: slice {k} has two images with TriggerTime {times[k, t]:g} ms "
                f"({sources[k, t]}, {sources[k, t + 1]}): duplicated frames"
            )
        # Per slice the mean step (first to last trigger over frames - 1), then the median over
        # slices: slices come from different breath-holds whose heart rates differ a little.
        per_slice = (times[:, -1] - times[:, 0]) / (n_frames - 1)
        return float(np.median(per_slice)), "trigger_time"
    if ref.nominal_interval and (ref.cardiac_images or n_frames) and n_frames > 1:
        # No TriggerTime: the R-R interval (NominalInterval) over the phases per cycle.
        return ref.nominal_interval / float(ref.cardiac_images or n_frames), "nominal_interval"
    return None, "unknown"


def _stack_affine(
    slices: list[list[DicomImage]],
    ref: DicomImage,
    normal: np.ndarray,
    options: DicomOptions,
    label: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The voxel -> RAS affine and the step between slices (LPS mm): in-plane axes from
    ``ref``'s orientation and pixel spacing, the slice step measured from the slices' first
    images, whose positions along the normal must be evenly spaced."""
    n_slices = len(slices)
    positions = np.array([s[0].position for s in slices])
    if n_slices > 1:
        gaps = np.diff(positions @ normal)
        median_gap = float(np.median(gaps))
        if np.max(np.abs(gaps - median_gap)) > options.slice_spacing_tolerance_mm:
            raise DicomConversionError(
                f"{label}: uneven slice spacing along the normal ({', '.join(f'{g:.2f}' for g in gaps)} "
                "mm): a slice is missing or duplicated"
            )
        step = (positions[-1] - positions[0]) / (n_slices - 1)
    else:
        step = normal * (ref.slice_gap or 1.0)
    ps_row, ps_col = ref.pixel_spacing
    lps = np.eye(4)
    lps[:3, 0] = ref.orientation[:3] * ps_col
    lps[:3, 1] = ref.orientation[3:] * ps_row
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps, step


def _pixel_volume(slices: list[list[DicomImage]]) -> np.ndarray:
    """X x Y x slices x frames pixels: float32 when rescaled or float, else int16 when it fits."""
    arrays, any_rescaled = [], False
    for members in slices:
        frames = []
        for img in members:
            arr, rescaled = read_pixels(img)
            any_rescaled |= rescaled
            frames.append(arr)
        arrays.append(np.stack(frames, axis=-1))  # rows x columns x frames
    data = np.stack(arrays, axis=2)  # rows x columns x slices x frames
    data = np.ascontiguousarray(np.transpose(data, (1, 0, 2, 3)))  # X = columns first
    if any_rescaled or data.dtype.kind == "f":
        data = data.astype(np.float32)
    elif data.min() >= np.iinfo(np.int16).min and data.max() <= np.iinfo(np.int16).max:
        data = data.astype(np.int16)
    return data
