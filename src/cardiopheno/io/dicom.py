"""DICOM cine (a folder, or a zip as UK Biobank delivers it) to a 4D NIfTI.

The reader in steps, each in its own module:

- ``dicom_source``: the files of a folder or zip, and a UK Biobank zip manifest;
- ``dicom_headers``: one file's geometry and timing, and its pixels;
- ``dicom_series``: which series make up the cine (``DicomOptions``, config ``inputs.dicom``);
- ``dicom_stack``: the chosen images stacked into X x Y x slices x frames with their affine
  (the geometry conventions are written there);
- ``dicom_privacy``: no identifying header value leaves the reader;
- this module: reading one cine and writing it as NIfTI; ``dicom_batch``: a batch of subjects,
  every view that has DICOM series names, into the workflow's conversion table.

No patient-identifying header value (name, ID, birth date, accession number, ...) is kept, logged
or written: the cohort ``eid`` is the only key, and every error message is scrubbed of the
identifying values seen in the headers and the zip manifest before it leaves this module.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from cardiopheno.io.dicom_headers import DicomConversionError, DicomImage, parse_header
from cardiopheno.io.dicom_privacy import IDENTIFYING_MANIFEST_COLUMNS, Scrubber, quiet_pydicom
from cardiopheno.io.dicom_series import DicomOptions, select_series
from cardiopheno.io.dicom_source import DicomSource
from cardiopheno.io.dicom_stack import DicomCine, stack_images
from cardiopheno.io.nifti import save_nifti

log = logging.getLogger(__name__)


def read_dicom_cine(
    path: str | os.PathLike, options: DicomOptions | None = None, label: str | None = None
) -> DicomCine:
    """Read the short-axis cine in a DICOM folder or zip; raise DicomConversionError otherwise.

    ``label`` (the eid) prefixes messages; error text never contains identifying header values.
    """
    options = options or DicomOptions()
    path = Path(path)
    label = label or path.name
    scrub = Scrubber()
    try:
        with quiet_pydicom(), DicomSource(path) as source:
            manifest_desc, wanted = _manifest_series(source.manifest, options, scrub)
            images = _read_headers(
                source, wanted, scrub, f"{label}: no DICOM images in {path.name}"
            )
            descriptions: dict[str, str] = {}
            for img in images:
                descriptions.setdefault(img.series_key, img.series_description)
            keys = set(select_series(descriptions, options, manifest_desc))
            cine = stack_images([img for img in images if img.series_key in keys], options, label)
    except DicomConversionError as exc:
        raise DicomConversionError(scrub(str(exc), keep=label)) from None
    except Exception as exc:  # anything a malformed file throws, scrubbed of identifying values
        raise DicomConversionError(
            scrub(f"{label}: {path.name}: {type(exc).__name__}: {exc}", keep=label)
        ) from None
    _log_cine(label, cine, len(keys))
    return cine


def _manifest_series(
    manifest: pd.DataFrame | None, options: DicomOptions, scrub: Scrubber
) -> tuple[list[str], set[str] | None]:
    """From a zip's manifest: every series description it lists, and the base names of the files
    of the chosen series (None: read every file). Its identifying columns go to ``scrub``."""
    if manifest is None:
        return [], None
    for col in IDENTIFYING_MANIFEST_COLUMNS:
        if col in manifest:
            for v in manifest[col]:
                scrub.add(v)
    if not {"filename", "seriesdescription"} <= set(manifest.columns):
        return [], None
    keep = manifest["seriesdescription"].map(options.wants)
    wanted = None
    if keep.any():  # read only the files of the chosen series
        wanted = set(manifest.loc[keep, "filename"].map(lambda f: f.rsplit("/", 1)[-1]))
    return sorted(set(manifest["seriesdescription"])), wanted


def _read_headers(
    source: DicomSource, wanted: set[str] | None, scrub: Scrubber, none_found: str
) -> list[DicomImage]:
    """The DICOM images among the source's files (only those ``wanted`` by base name when
    given); DicomConversionError ``none_found`` (with the count of other files) if none."""
    images, skipped = [], 0
    for name, read in source.files:
        if wanted is not None and name.rsplit("/", 1)[-1] not in wanted:
            continue
        img = parse_header(name, read, scrub)
        if img is None:
            skipped += 1
        else:
            images.append(img)
    if not images:
        raise DicomConversionError(f"{none_found} ({skipped} other files)")
    return images


def _log_cine(label: str, cine: DicomCine, n_series: int) -> None:
    log.info(
        "%s: %d slices x %d frames of %dx%d px from %d series; spacing %.4f x %.4f x %.3f mm; "
        "frame interval %s ms (%s)",
        label,
        cine.data.shape[2],
        cine.data.shape[3],
        cine.data.shape[0],
        cine.data.shape[1],
        n_series,
        *cine.spacing,
        f"{cine.frame_interval_ms:.2f}" if cine.frame_interval_ms else "unknown",
        cine.frame_interval_source,
    )


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
