"""``cardiopheno phenotypes``: one subject's imaging phenotypes from its segmentation, as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.nifti import ImageReadError
from cardiopheno.phenotypes.registry import (
    PhenotypeError,
    compute_phenotypes,
    context_from_files,
    output_specs,
    resolve_families,
)

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "phenotypes",
        help="compute one subject's imaging phenotypes from a (4D) segmentation",
        description=(
            "Compute LV/RV function, volume-curve, wall-thickness and strain phenotypes from a "
            "short-axis segmentation (labels 1 LV cavity, 2 LV myocardium, 3 RV cavity; all "
            "frames). The frame interval comes from the NIfTI header (pixdim[4] with its time "
            "unit); without it HR, CO and filling rates are NaN. Strain needs the cine "
            "(--image); without it strain is NaN and 'notes' says why."
        ),
    )
    p.add_argument("--seg", required=True, type=Path, help="segmentation NIfTI (3D or 4D)")
    p.add_argument("--image", type=Path, help="the cine it segments (shape check, timing, strain)")
    p.add_argument(
        "--ed-frame",
        choices=("max-volume", "first"),
        default="max-volume",
        help="ED = frame of max LV volume (default) or frame 0 (UK Biobank)",
    )
    p.add_argument("--height-cm", type=float, help="height for BSA-indexed values")
    p.add_argument("--weight-kg", type=float, help="weight for BSA-indexed values")
    p.add_argument("--families", nargs="+", help="families to run (default: all)")
    p.add_argument(
        "--view",
        nargs=2,
        action="append",
        default=[],
        metavar=("VIEW", "SEG"),
        help="another view's segmentation, e.g. --view la_4ch seg4_la_4ch.nii.gz (repeatable; "
        "atrial_function reads la_2ch and la_4ch)",
    )
    p.add_argument("--eid", default="", help="subject id written into the output")
    p.add_argument("--out", type=Path, help="write JSON here (default: stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    covariates = {"height_cm": args.height_cm, "weight_kg": args.weight_kg}
    covariates = {k: v for k, v in covariates.items() if v is not None}
    try:
        families = resolve_families(args.families)
        ctx = context_from_files(
            args.seg,
            args.image,
            covariates,
            ed_frame_mode=args.ed_frame.replace("-", "_"),
            eid=args.eid or args.seg.name,
            views={name: path for name, path in args.view},
        )
        values = compute_phenotypes(ctx, families)
    except (ImageReadError, PhenotypeError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    specs = {s.name: s for s in output_specs(families)}
    doc = {
        "eid": args.eid,
        "seg": str(args.seg),
        "frame_interval_ms": ctx.frame_interval_ms,
        "n_frames": ctx.n_frames,
        "spacing_mm": list(ctx.spacing),
        "values": {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()
        },
        "units": {k: specs[k].unit for k in values},
        "notes": ctx.notes,
    }
    text = json.dumps(doc, indent=2)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0
