"""DICOM short-axis cine (a folder, or a zip as UK Biobank delivers it) to a 4D NIfTI.

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

pydicom reads the headers and pixels (RLE natively, JPEG baseline through Pillow; JPEG lossless,
JPEG-LS and JPEG 2000 need the optional pylibjpeg plug-ins or python-gdcm, and their absence is
reported naming the transfer syntax). We stack slices by hand because neither pydicom nor nibabel
assembles a multi-slice cine (nibabel.nicom covers Siemens mosaics only) and dcm2niix is an external
binary whose output naming and 4D ordering we would have to reverse-engineer per vendor.

No patient-identifying header value (name, ID, birth date, accession number, ...) is kept, logged
or written: the cohort ``eid`` is the only key, and every error message is scrubbed of the
identifying values seen in the headers and the zip manifest before it leaves this module.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pydicom.config
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_rescale

from cardiopheno.io.nifti import Cine, save_nifti

log = logging.getLogger(__name__)

# Header keywords whose values identify a person; never copied anywhere, scrubbed from messages.
IDENTIFYING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "InstitutionName",
    "InstitutionAddress",
)
# Zip manifest columns (UK Biobank: filename, patientid, studyid, aetitle, date, time, ...) that
# identify a person or a visit; scrubbed like the header values above.
IDENTIFYING_MANIFEST_COLUMNS = ("patientid", "studyid", "accessionnumber", "patientname")

DEFAULT_SERIES_INCLUDE = (
    r"(?i)^CINE_segmented_SAX_b\d+$",  # UK Biobank field 20209: one series per slice
    r"(?i)(^|[^a-z])sax?([^a-z]|$)",  # "sa" or "sax" as a token: cine_sax, SA cine, sa_retro
    r"(?i)short[ _-]?axis",
)
DEFAULT_SERIES_EXCLUDE = (
    r"(?i)inline[ _]?vf",  # UK Biobank's derived (inline volume function) series
    r"(?i)(^|[^a-z])(lax|[234]ch)([^a-z]|$)|long[ _-]?axis",
    r"(?i)localizer|scout|survey|tagging|shmolli|t1map",
)

# The other views: a folder or zip given for a view holds that view's cine, so only its own
# UK Biobank series names and common spellings are preferred (the view's ``dicom_series``,
# cardiopheno.views), and localizers are left out; the short axis's exclusion of long-axis
# series does not apply.
VIEW_SERIES_EXCLUDE = (r"(?i)localizer|scout|survey|tagging|shmolli|t1map",)

_TRANSFER_SYNTAX_HINT = (
    "install the pydicom plug-ins for it (pylibjpeg with pylibjpeg-libjpeg for JPEG lossless and "
    "JPEG-LS, pylibjpeg-openjpeg for JPEG 2000) or python-gdcm, or decompress the series first"
)


class DicomConversionError(RuntimeError):
    """A DICOM series could not be turned into a cine; the message names the file and the cause."""


@dataclass(frozen=True)
class DicomOptions:
    """How to find and stack the short-axis cine (config section ``inputs.dicom``)."""

    series_include: tuple[str, ...] = DEFAULT_SERIES_INCLUDE
    series_exclude: tuple[str, ...] = DEFAULT_SERIES_EXCLUDE
    slice_spacing_tolerance_mm: float = 0.5
    orientation_tolerance: float = 1e-3

    def for_view(self, view: str) -> DicomOptions:
        """These options for another view's DICOM (its own series names)."""
        if view == "sa":
            return self
        return replace(
            self, series_include=view_series_include()[view], series_exclude=VIEW_SERIES_EXCLUDE
        )

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> DicomOptions:
        cfg = dict(cfg or {})
        return cls(
            series_include=tuple(cfg.get("series_include", DEFAULT_SERIES_INCLUDE)),
            series_exclude=tuple(cfg.get("series_exclude", DEFAULT_SERIES_EXCLUDE)),
            slice_spacing_tolerance_mm=float(cfg.get("slice_spacing_tolerance_mm", 0.5)),
            orientation_tolerance=float(cfg.get("orientation_tolerance", 1e-3)),
        )


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


@dataclass
class _Image:
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


# --------------------------------------------------------------------------------------------
# Scrubbing identifying values


class _Scrubber:
    """Collects identifying values and removes them from any text (messages, reasons)."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add_dataset(self, ds: pydicom.Dataset) -> None:
        for keyword in IDENTIFYING_KEYWORDS:
            elem = ds.get(keyword)
            if elem is None:
                continue
            values = (
                elem if isinstance(elem, list | tuple | pydicom.multival.MultiValue) else [elem]
            )
            for v in values:
                self.add(str(v))
                if keyword.endswith("Name"):  # PN components: "Family^Given"
                    for part in re.split(r"[\^=]", str(v)):
                        self.add(part)

    def add(self, value: str) -> None:
        value = str(value).strip()
        if len(value) >= 3 and value.lower() not in {"nan", "none", "anonymous", "anon"}:
            self.values.add(value)

    def __call__(self, text: str, keep: str = "") -> str:
        """``text`` without identifying values; ``keep`` (the eid, the cohort's own key) stays."""
        for value in sorted(self.values - {keep}, key=len, reverse=True):
            text = re.sub(re.escape(value), "<redacted>", text, flags=re.IGNORECASE)
        return text


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Read tolerantly (invalid UI/DS values pass) and let no warning echo a header value."""
    settings = pydicom.config.settings
    old = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        settings.reading_validation_mode = old


# --------------------------------------------------------------------------------------------
# Inputs: a folder or a zip, with an optional UK Biobank manifest


def _normalise_column(name: str) -> str:
    name = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return {"seriesdiscription": "seriesdescription", "aet": "aetitle"}.get(name, name)


def read_zip_manifest(text: str) -> pd.DataFrame:
    """Parse a UK Biobank zip manifest (``manifest.csv`` or the misspelt ``manifest.cvs``).

    Column names are normalised (lower case, letters and digits only; ``series discription`` ->
    ``seriesdescription``). Dates written as ``Aug 30, 2015`` carry an unquoted comma that breaks
    CSV parsing; a row with more fields than the header has its surplus folded back into the
    ``date`` field (or, without one, into the last column).
    """
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return pd.DataFrame(columns=["filename", "seriesdescription"])
    header = [_normalise_column(c) for c in rows[0]]
    fixed = []
    for row in rows[1:]:
        extra = len(row) - len(header)
        if extra > 0:
            at = header.index("date") if "date" in header else len(header) - 1
            row = [*row[:at], ",".join(row[at : at + extra + 1]), *row[at + extra + 1 :]]
        fixed.append((row + [""] * len(header))[: len(header)])
    return pd.DataFrame(fixed, columns=header).apply(lambda s: s.str.strip())


class _Source:
    """The files of one input (folder or zip) as (name, read-bytes) pairs, plus its manifest."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self.files: list[tuple[str, Callable[[], bytes]]] = []
        self.manifest: pd.DataFrame | None = None

    def __enter__(self) -> _Source:
        manifest_text = None
        if self.path.is_dir():
            for p in sorted(self.path.rglob("*")):
                if not p.is_file():
                    continue
                name = p.relative_to(self.path).as_posix()
                if p.name.lower() in ("manifest.csv", "manifest.cvs"):
                    manifest_text = p.read_text(errors="replace")
                else:
                    self.files.append((name, p.read_bytes))
        elif zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            for info in self._zip.infolist():
                if info.is_dir():
                    continue
                base = info.filename.rsplit("/", 1)[-1]
                if base.lower() in ("manifest.csv", "manifest.cvs"):
                    manifest_text = self._zip.read(info).decode(errors="replace")
                else:
                    self.files.append((info.filename, _zip_reader(self._zip, info.filename)))
        elif self.path.exists():
            raise DicomConversionError(f"{self.path}: neither a folder nor a zip file")
        else:
            raise DicomConversionError(f"{self.path}: not found")
        if manifest_text is not None:
            self.manifest = read_zip_manifest(manifest_text)
        return self

    def __exit__(self, *exc) -> None:
        if self._zip is not None:
            self._zip.close()


def _zip_reader(zf: zipfile.ZipFile, name: str) -> Callable[[], bytes]:
    return lambda: zf.read(name)


# --------------------------------------------------------------------------------------------
# Headers


def _float(ds: pydicom.Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        out = float(value)
        return out if np.isfinite(out) else None
    except (TypeError, ValueError):
        return None


def _int(ds: pydicom.Dataset, keyword: str) -> int | None:
    value = _float(ds, keyword)
    return None if value is None else int(round(value))


def _floats(ds: pydicom.Dataset, keyword: str, n: int, source: str) -> np.ndarray:
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


def _parse_header(name: str, read: Callable[[], bytes], scrub: _Scrubber) -> _Image | None:
    """The geometry of one file, or None when it is not a DICOM image (README, DICOMDIR, ...)."""
    raw = read()
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
    scrub.add_dataset(ds)
    if "Rows" not in ds or "Columns" not in ds:
        return None  # not an image (presentation state, structured report, DICOMDIR)
    frames = _int(ds, "NumberOfFrames") or 1
    if frames > 1:
        raise DicomConversionError(
            f"{name}: enhanced multi-frame DICOM ({frames} frames in one file) is not supported; "
            "convert it with dcm2niix first"
        )
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if spacing is None or len(spacing) != 2:
        raise DicomConversionError(f"{name}: missing PixelSpacing")
    series_uid = str(ds.get("SeriesInstanceUID", "") or "").strip().rstrip("\x00")
    series_number = _int(ds, "SeriesNumber")
    description = str(ds.get("SeriesDescription", "") or "").strip()
    key = series_uid or f"{series_number}|{description}"
    slice_gap = _float(ds, "SpacingBetweenSlices") or _float(ds, "SliceThickness")
    return _Image(
        source=name,
        read=read,
        series_key=key,
        series_number=series_number,
        series_description=description,
        instance_number=_int(ds, "InstanceNumber"),
        position=_floats(ds, "ImagePositionPatient", 3, name),
        orientation=_floats(ds, "ImageOrientationPatient", 6, name),
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        shape=(int(ds.Rows), int(ds.Columns)),
        trigger_time=_float(ds, "TriggerTime"),
        nominal_interval=_float(ds, "NominalInterval"),
        cardiac_images=_int(ds, "CardiacNumberOfImages"),
        slice_gap=slice_gap,
    )


# --------------------------------------------------------------------------------------------
# Series selection


def _matches(description: str, patterns: Sequence[str]) -> bool:
    return any(re.search(p, description) for p in patterns)


def select_series(
    descriptions: Mapping[str, str],
    options: DicomOptions,
    manifest_descriptions: Sequence[str] = (),
) -> list[str]:
    """Keys of the series that make up the short-axis cine.

    A series qualifies when its description matches an ``series_include`` pattern and no
    ``series_exclude`` pattern. A lone series qualifies when it has no description (plain scanner
    exports, Sunnybrook). Several qualifying series are stacked together (UK Biobank writes one
    series per slice).
    """
    chosen = [
        key
        for key, desc in descriptions.items()
        if _matches(desc, options.series_include) and not _matches(desc, options.series_exclude)
    ]
    if not chosen and len(descriptions) == 1 and not next(iter(descriptions.values())):
        chosen = list(descriptions)
    if not chosen:
        found = sorted({d or "<empty>" for d in descriptions.values()} | set(manifest_descriptions))
        raise DicomConversionError(
            f"no short-axis cine among {len(descriptions)} series (descriptions: "
            f"{', '.join(found)}); adjust inputs.dicom.series_include / series_exclude"
        )
    return chosen


# --------------------------------------------------------------------------------------------
# Stacking


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


def _frame_sort_key(img: _Image) -> tuple:
    return (
        img.trigger_time if img.trigger_time is not None else np.inf,
        img.instance_number if img.instance_number is not None else np.iinfo(np.int64).max,
        _natural_key(img.source),
    )


def _natural_key(text: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _read_pixels(img: _Image) -> tuple[np.ndarray, bool]:
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
    slope, intercept = _float(ds, "RescaleSlope"), _float(ds, "RescaleIntercept")
    rescaled = (slope not in (None, 1.0)) or (intercept not in (None, 0.0))
    if rescaled:
        arr = apply_rescale(arr, ds)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        arr = arr.max() - arr  # MONOCHROME1 shows low values bright
    return arr, rescaled


def _stack(images: list[_Image], options: DicomOptions, label: str) -> DicomCine:
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
    row_cos, col_cos = ref.orientation[:3], ref.orientation[3:]
    normal = np.cross(row_cos, col_cos)
    normal /= np.linalg.norm(normal)
    proj = np.array([img.position @ normal for img in images])
    slice_of = _cluster_positions(proj, tol=0.05)
    n_slices = int(slice_of.max()) + 1

    # A slice acquired in more than one series (UK Biobank repeats a slice that failed): keep the
    # series acquired last (highest SeriesNumber), as the UK Biobank pipeline does.
    slices: list[list[_Image]] = []
    for k in range(n_slices):
        members = [img for img, s in zip(images, slice_of, strict=True) if s == k]
        series = {img.series_key for img in members}
        if len(series) > 1:
            latest = max(
                series,
                key=lambda key: max(
                    (i.series_number or -1) for i in members if i.series_key == key
                ),
            )
            log.info(
                "%s: slice %d found in %d series; keeping the latest (%s)",
                label,
                k,
                len(series),
                next(i.series_description for i in members if i.series_key == latest) or "",
            )
            members = [img for img in members if img.series_key == latest]
        slices.append(sorted(members, key=_frame_sort_key))

    counts = [len(s) for s in slices]
    if len(set(counts)) != 1:
        raise DicomConversionError(
            f"{label}: slices have different numbers of frames {counts} (along the slice normal); "
            "a slice is incomplete or the folder mixes series"
        )
    n_frames = counts[0]

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
        interval, interval_source = float(np.median(per_slice)), "trigger_time"
    elif ref.nominal_interval and (ref.cardiac_images or n_frames) and n_frames > 1:
        # No TriggerTime: the R-R interval (NominalInterval) over the phases per cycle.
        interval = ref.nominal_interval / float(ref.cardiac_images or n_frames)
        interval_source = "nominal_interval"
    else:
        interval, interval_source = None, "unknown"

    # Geometry: slice positions along the normal must be evenly spaced.
    firsts = [s[0] for s in slices]
    positions = np.array([img.position for img in firsts])
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
    lps[:3, 0] = row_cos * ps_col
    lps[:3, 1] = col_cos * ps_row
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps

    arrays, any_rescaled = [], False
    for members in slices:
        frames = []
        for img in members:
            arr, rescaled = _read_pixels(img)
            any_rescaled |= rescaled
            frames.append(arr)
        arrays.append(np.stack(frames, axis=-1))  # rows x columns x frames
    data = np.stack(arrays, axis=2)  # rows x columns x slices x frames
    data = np.ascontiguousarray(np.transpose(data, (1, 0, 2, 3)))  # X = columns first
    if any_rescaled or data.dtype.kind == "f":
        data = data.astype(np.float32)
    elif data.min() >= np.iinfo(np.int16).min and data.max() <= np.iinfo(np.int16).max:
        data = data.astype(np.int16)

    descriptions = tuple(dict.fromkeys(img.series_description for s in slices for img in s))
    return DicomCine(
        data=data,
        affine=affine,
        spacing=(ps_col, ps_row, float(np.linalg.norm(step))),
        frame_interval_ms=interval,
        frame_interval_source=interval_source,
        instance_numbers=inst,
        trigger_times_ms=times,
        sources=sources,
        series_descriptions=descriptions,
    )


# --------------------------------------------------------------------------------------------
# Public API


def read_dicom_cine(
    path: str | os.PathLike, options: DicomOptions | None = None, label: str | None = None
) -> DicomCine:
    """Read the short-axis cine in a DICOM folder or zip; raise DicomConversionError otherwise.

    ``label`` (the eid) prefixes messages; error text never contains identifying header values.
    """
    options = options or DicomOptions()
    path = Path(path)
    label = label or path.name
    scrub = _Scrubber()
    try:
        with _quiet_pydicom(), _Source(path) as source:
            manifest_desc: list[str] = []
            wanted: set[str] | None = None
            if source.manifest is not None:
                for col in IDENTIFYING_MANIFEST_COLUMNS:
                    if col in source.manifest:
                        for v in source.manifest[col]:
                            scrub.add(v)
                if {"filename", "seriesdescription"} <= set(source.manifest.columns):
                    m = source.manifest
                    manifest_desc = sorted(set(m["seriesdescription"]))
                    keep = m["seriesdescription"].map(
                        lambda d: (
                            _matches(d, options.series_include)
                            and not _matches(d, options.series_exclude)
                        )
                    )
                    if keep.any():  # read only the files of the chosen series
                        wanted = set(m.loc[keep, "filename"].map(lambda f: f.rsplit("/", 1)[-1]))
            images = []
            skipped = 0
            for name, read in source.files:
                if wanted is not None and name.rsplit("/", 1)[-1] not in wanted:
                    continue
                img = _parse_header(name, read, scrub)
                if img is None:
                    skipped += 1
                else:
                    images.append(img)
            if not images:
                raise DicomConversionError(
                    f"{label}: no DICOM images in {path.name} ({skipped} other files)"
                )
            descriptions = {}
            for img in images:
                descriptions.setdefault(img.series_key, img.series_description)
            keys = set(select_series(descriptions, options, manifest_desc))
            chosen = [img for img in images if img.series_key in keys]
            cine = _stack(chosen, options, label)
    except DicomConversionError as exc:
        raise DicomConversionError(scrub(str(exc), keep=label)) from None
    except Exception as exc:  # anything a malformed file throws, scrubbed of identifying values
        raise DicomConversionError(
            scrub(f"{label}: {path.name}: {type(exc).__name__}: {exc}", keep=label)
        ) from None
    log.info(
        "%s: %d slices x %d frames of %dx%d px from %d series; spacing %.4f x %.4f x %.3f mm; "
        "frame interval %s ms (%s)",
        label,
        cine.data.shape[2],
        cine.data.shape[3],
        cine.data.shape[0],
        cine.data.shape[1],
        len(keys),
        *cine.spacing,
        f"{cine.frame_interval_ms:.2f}" if cine.frame_interval_ms else "unknown",
        cine.frame_interval_source,
    )
    return cine


def convert_dicom(
    path: str | os.PathLike,
    out_path: str | os.PathLike,
    options: DicomOptions | None = None,
    label: str | None = None,
) -> DicomCine:
    """Convert a DICOM folder or zip to a 4D NIfTI (pixdim[4] = frame interval in ms, 0 if unknown).

    The NIfTI header carries geometry and timing only (``descrip`` and ``aux_file`` stay empty).
    """
    cine = read_dicom_cine(path, options, label)
    zooms = (*cine.spacing, cine.frame_interval_ms or 0.0)
    save_nifti(out_path, cine.data, cine.affine, zooms=zooms, time_unit="msec")
    return cine


def is_dicom_input(path: str | os.PathLike) -> bool:
    """Whether a manifest ``sa`` entry points at DICOM (a folder or a zip) rather than NIfTI."""
    p = Path(path)
    return p.is_dir() or p.suffix.lower() == ".zip"


def convert_batch(
    manifest: pd.DataFrame,
    out_dir: str | os.PathLike,
    options: DicomOptions | None = None,
) -> pd.DataFrame:
    """Convert every DICOM ``sa`` of a (batch of a) manifest with absolute paths.

    Returns one row per manifest row: ``eid``, ``sa`` (absolute NIfTI path: the converted file
    ``out_dir/{eid}/sa.nii.gz``, or the manifest's own NIfTI), ``seg_sa`` (passed through, "" if
    none), ``source`` ("nifti" | "dicom_folder" | "dicom_zip"), ``ok``, ``reason`` ("" when ok),
    ``frame_interval_source``. One subject's failure is a row with ``ok`` False, never an exception.
    """
    out_dir = Path(out_dir)
    options = options or DicomOptions()
    views = [v for v in view_series_include() if v in manifest.columns]
    rows = []
    for rec in manifest.to_dict("records"):
        eid = str(rec["eid"])
        sa = str(rec.get("sa", "") or "")
        seg = rec.get("seg_sa", "")
        seg = "" if seg is None or (isinstance(seg, float) and np.isnan(seg)) else str(seg)
        row = {"eid": eid, "sa": sa, "seg_sa": seg, "source": "nifti", "ok": True, "reason": ""}
        row["frame_interval_source"] = ""
        if sa and is_dicom_input(sa):
            row["source"] = "dicom_folder" if Path(sa).is_dir() else "dicom_zip"
            target = (out_dir / eid / "sa.nii.gz").resolve()
            try:
                cine = convert_dicom(sa, target, options, label=eid)
                row.update(sa=str(target), frame_interval_source=cine.frame_interval_source)
            except DicomConversionError as exc:
                reason = str(exc)
                if not reason.startswith(eid):
                    reason = f"{eid}: {reason}"
                log.warning("conversion failed: %s", reason)
                row.update(sa="", ok=False, reason=reason)
        elif not sa:
            row.update(ok=False, reason=f"{eid}: empty sa path")
        for view in views:
            row.update(_convert_view(rec, view, out_dir, options.for_view(view)))
        rows.append(row)
    extra = [c for v in views for c in (v, f"{v}_reason", *_provided(v))]
    columns = ["eid", "sa", "seg_sa", "source", "ok", "reason", "frame_interval_source", *extra]
    return pd.DataFrame(rows, columns=columns)


def view_series_include() -> dict[str, tuple[str, ...]]:
    """Each view's DICOM series names beside the short axis's (``ViewSpec.dicom_series``)."""
    from cardiopheno.views import VIEWS

    return {name: spec.dicom_series for name, spec in VIEWS.items() if spec.dicom_series}


def _provided(view: str) -> tuple[str, ...]:
    from cardiopheno.views import VIEWS

    return tuple(VIEWS[view].provided)


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _convert_view(rec: Mapping, view: str, out_dir: Path, options: DicomOptions) -> dict:
    """Another view's entry of the conversion table: its NIfTI path (converted, or the
    manifest's own), ``<view>_reason`` when conversion failed, provided segmentations passed on."""
    eid, path = str(rec["eid"]), _text(rec.get(view))
    out = {view: path, f"{view}_reason": "", **{c: _text(rec.get(c)) for c in _provided(view)}}
    if path and is_dicom_input(path):
        target = (out_dir / eid / f"{view}.nii.gz").resolve()
        try:
            convert_dicom(path, target, options, label=eid)
            out[view] = str(target)
        except DicomConversionError as exc:
            reason = str(exc) if str(exc).startswith(eid) else f"{eid}: {exc}"
            log.warning("%s conversion failed: %s", view, reason)
            out.update({view: "", f"{view}_reason": reason})
    return out


CONVERT_COLUMNS = {  # every column of results/convert/{batch}.parquet (none is a float)
    "eid": "subject key",
    "sa": "absolute path of the 4D short-axis NIfTI (converted, or the manifest's own); '' on failure",
    "seg_sa": "provided segmentation from the manifest, passed through ('' when none)",
    "source": "nifti | dicom_folder | dicom_zip: what the manifest's sa pointed at",
    "ok": "True when sa is a usable NIfTI path",
    "reason": "why conversion failed ('' when ok); never contains identifying header values",
    "frame_interval_source": "trigger_time | nominal_interval | unknown ('' when not converted)",
}
VIEW_CONVERT_COLUMNS = {  # after those, for each other view the manifest has
    "<view>": "la_2ch, la_4ch, ao: absolute NIfTI path (converted, or the manifest's own; '' on failure)",
    "<view>_reason": "why that view's conversion failed ('' when it did not)",
    "<provided>": "the view's provided-segmentation columns, passed through",
}


def convert_batch_files(
    manifest_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    table_path: str | os.PathLike,
    dicom_config: Mapping | None = None,
    config: Mapping | None = None,
) -> pd.DataFrame:
    """Workflow entry: convert one batch manifest's DICOM inputs and write its status table."""
    from cardiopheno.io.tables import read_any, write_table

    manifest = read_any(manifest_path)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    table = convert_batch(manifest, out_dir, DicomOptions.from_config(dicom_config))
    write_table(
        table,
        table_path,
        config=config,
        extra={"columns": json.dumps({**CONVERT_COLUMNS, **VIEW_CONVERT_COLUMNS})},
    )
    n_dicom = int((table["source"] != "nifti").sum())
    log.info(
        "%d subjects, %d from DICOM, %d failed", len(table), n_dicom, int((~table["ok"]).sum())
    )
    return table
