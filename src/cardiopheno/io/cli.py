"""Subcommands for real inputs: ``convert-dicom`` (DICOM folder or zip -> 4D NIfTI) and
``ukbb-tables`` (UK Biobank showcase CSV -> covariates, diagnoses and deaths tables)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml

log = logging.getLogger(__name__)


def _inputs_section(path: str | None, key: str) -> dict:
    """``inputs.<key>`` of a config.yaml, or a file holding just that mapping (or ``<key>:``)."""
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    if "inputs" in data:
        data = data["inputs"] or {}
    if key in data:
        data = data[key] or {}
    return dict(data)


def _convert_dicom(args: argparse.Namespace) -> int:
    from cardiopheno.io.dicom import DicomConversionError, DicomOptions, convert_dicom

    options = DicomOptions.from_config(_inputs_section(args.config, "dicom"))
    label = args.eid or Path(args.input).name
    try:
        cine = convert_dicom(args.input, args.output, options, label=label)
    except DicomConversionError as exc:
        log.error("%s", exc)
        return 1
    x, y, z, t = cine.data.shape
    print(
        f"{args.output}: {x}x{y}x{z}x{t}, spacing {cine.spacing[0]:.4f} x {cine.spacing[1]:.4f} x "
        f"{cine.spacing[2]:.3f} mm, frame interval "
        f"{cine.frame_interval_ms or 0:.2f} ms ({cine.frame_interval_source})"
    )
    return 0


def _ukbb_tables(args: argparse.Namespace) -> int:
    from cardiopheno.io.ukbb import UKBiobankTableError, ukbb_to_cohort_tables, write_cohort_tables

    field_map = _inputs_section(args.config, "ukbb")
    try:
        tables = ukbb_to_cohort_tables(args.showcase, field_map)
    except (UKBiobankTableError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 1
    for name, path in write_cohort_tables(*tables, args.out).items():
        print(f"{name}: {path}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-dicom",
        help="convert a DICOM short-axis cine (folder or UK Biobank zip) to a 4D NIfTI",
        description=(
            "Stack the short-axis cine of a DICOM folder or zip into an X x Y x slices x frames "
            "NIfTI with RAS affine, slice spacing from the positions and the frame interval (ms) "
            "in pixdim[4]. No identifying header value is written or logged."
        ),
    )
    p.add_argument("input", help="DICOM folder or zip (UK Biobank layout with manifest.csv)")
    p.add_argument("-o", "--output", required=True, help="output .nii.gz")
    p.add_argument("--eid", default=None, help="subject key used in messages")
    p.add_argument("--config", default=None, help="config.yaml (uses inputs.dicom) or its mapping")
    p.set_defaults(func=_convert_dicom)

    q = subparsers.add_parser(
        "ukbb-tables",
        help="UK Biobank showcase CSV -> covariates.csv, diagnoses.csv, deaths.csv",
        description=(
            "Map a showcase-style table (eid plus FIELD-INSTANCE.ARRAY columns) to the cohort "
            "tables; negative UK Biobank codes become missing, ICD-10 codes are undotted (I500)."
        ),
    )
    q.add_argument("showcase", help="showcase-style CSV")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--config", default=None, help="config.yaml (uses inputs.ukbb) or a field map")
    q.set_defaults(func=_ukbb_tables)
