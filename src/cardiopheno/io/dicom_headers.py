"""One DICOM file: its geometry and timing from the header (no identifying value is kept) and its
pixels after the modality rescale (cardiopheno.io.dicom).

pydicom reads the headers and pixels (RLE natively, JPEG baseline through Pillow; JPEG lossless,
JPEG-LS and JPEG 2000 need the optional pylibjpeg plug-ins or python-gdcm, and their absence is
reported naming the transfer syntax).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_rescale

from cardiopheno.io.dicom_privacy import Scrubber

_TRANSFER_SYNTAX_HINT = (
    "install the pydicom plug-ins for it (pylibjpeg with pylibjpeg-libjpeg for JPEG lossless and "
    "JPEG-LS, pylibjpeg-openjpeg for JPEG 2000) or python-gdcm, or decompress the series first"
)


class DicomConversionError(RuntimeError):
    """A DICOM series could not be turned into a cine; the message names the file and the cause."""


@dataclass
class DicomImage:
    """The geometry and timing of one DICOM image (identifying values are never stored here)."""

    source: str
    read: Callable[[], bytes] = field(repr=False)
    series_key: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    position: np.ndarray  # LPS mm
    orientation: np.ndarray  # 6 direction cosines
    pixel_spacing: tuple[float, float]  # (row step, column step) = (PixelSpacing[0], [1])
    shape: tuple[int, int]  # rows, columns
    trigger_time: float | None
    nominal_interval: float | None
    cardiac_images: int | None
    slice_gap: float | None  # SpacingBetweenSlices, else SliceThickness (single-slice stacks)


def header_float(ds: pydicom.Dataset, keyword: str) -> float | None:
    """``keyword``'s value as a finite float, or None when absent, empty or unreadable."""
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        out = float(value)
        return out if np.isfinite(out) else None
    except (TypeError, ValueError):
        return None


def header_int(ds: pydicom.Dataset, keyword: str) -> int | None:
    value = header_float(ds, keyword)
    return None if value is None else int(round(value))


def header_floats(ds: pydicom.Dataset, keyword: str, n: int, source: str) -> np.ndarray:
    """``keyword``'s ``n`` finite numbers; DicomConversionError naming ``source`` otherwise."""
    value = ds.get(keyword)
    if value is None or value == "":
        raise DicomConversionError(f"{source}: missing {keyword}, so the slice geometry is unknown")
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError) as exc:
        raise DicomConversionError(f"{source}: unreadable {keyword}") from exc
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise DicomConversionError(f"{source}: {keyword} must hold {n} numbers")
    return arr


def _read_header(name: str, raw: bytes) -> pydicom.Dataset | None:
    """The header of ``raw``, or None when it is not DICOM."""
    try:
        ds = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True)
    except InvalidDicomError:
        try:  # files without the 128-byte preamble and "DICM" marker (old exports)
            ds = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True, force=True)
        except Exception:
            return None
        if "Rows" not in ds:
            return None
    except Exception as exc:
        raise DicomConversionError(f"{name}: unreadable DICOM ({type(exc).__name__})") from exc
    return ds


def parse_header(name: str, read: Callable[[], bytes], scrub: Scrubber) -> DicomImage | None:
    """The geometry of one file, or None when it is not a DICOM image (README, DICOMDIR, ...)."""
    ds = _read_header(name, read())
    if ds is None:
        return None
    scrub.add_dataset(ds)
    if "Rows" not in ds or "Columns" not in ds:
        return None  # not an image (presentation state, structured report, DICOMDIR)
    frames = header_int(ds, "NumberOfFrames") or 1
    if frames > 1:
        raise DicomConversionError(
            f"{name}: enhanced multi-frame DICOM ({frames} frames in one file) is not supported; "
            "convert it with dcm2niix first"
        )
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if spacing is None or len(spacing) != 2:
        raise DicomConversionError(f"{name}: missing PixelSpacing")
    series_uid = str(ds.get("SeriesInstanceUID", "") or "").strip().rstrip("\x00")
    series_number = header_int(ds, "SeriesNumber")
    description = str(ds.get("SeriesDescription", "") or "").strip()
    key = series_uid or f"{series_number}|{description}"
    slice_gap = header_float(ds, "SpacingBetweenSlices") or header_float(ds, "SliceThickness")
    return DicomImage(
        source=name,
        read=read,
        series_key=key,
        series_number=series_number,
        series_description=description,
        instance_number=header_int(ds, "InstanceNumber"),
        position=header_floats(ds, "ImagePositionPatient", 3, name),
        orientation=header_floats(ds, "ImageOrientationPatient", 6, name),
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        shape=(int(ds.Rows), int(ds.Columns)),
        trigger_time=header_float(ds, "TriggerTime"),
        nominal_interval=header_float(ds, "NominalInterval"),
        cardiac_images=header_int(ds, "CardiacNumberOfImages"),
        slice_gap=slice_gap,
    )


def read_pixels(img: DicomImage) -> tuple[np.ndarray, bool]:
    """The image as (rows, columns) array after the modality rescale; and whether it was rescaled."""
    ds = pydicom.dcmread(io.BytesIO(img.read()), force=True)
    try:
        arr = ds.pixel_array
    except Exception as exc:
        tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(tsyntax, "name", "unknown transfer syntax")
        raise DicomConversionError(
            f"{img.source}: cannot decode pixel data in transfer syntax {name} ({tsyntax}): "
            f"{_TRANSFER_SYNTAX_HINT} [{type(exc).__name__}]"
        ) from exc
    if arr.ndim != 2:
        raise DicomConversionError(
            f"{img.source}: expected a single-frame greyscale image, got pixel array {arr.shape}"
        )
    slope, intercept = header_float(ds, "RescaleSlope"), header_float(ds, "RescaleIntercept")
    rescaled = (slope not in (None, 1.0)) or (intercept not in (None, 0.0))
    if rescaled:
        arr = apply_rescale(arr, ds)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        arr = arr.max() - arr  # MONOCHROME1 shows low values bright
    return arr, rescaled
