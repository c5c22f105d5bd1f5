"""``cardiopheno phenotypes``: one subject's imaging phenotypes from its segmentation, as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.contract import (
    InputError,
    check_covariate_values,
    covariate_ranges,
    readable,
    refuse_bad_output,
    refuse_overwriting_inputs,
)
from cardiopheno.io.nifti import ImageReadError
from cardiopheno.phenotypes.area_length import DEFAULT_METHOD, METHODS
from cardiopheno.phenotypes.registry import (
    PhenotypeError,
    compute_phenotypes,
    context_from_files,
    output_specs,
    reason_lines,
    resolve_families,
)
from cardiopheno.views import VIEWS, ViewSpec

# the covariate each option gives (a family's reason names the covariate; the notes the option)
COVARIATE_OPTIONS = {
    "central_pp": "--central-pp",
    "height_cm": "--height-cm",
    "weight_kg": "--weight-kg",
}

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
    p.add_argument(
        "--central-pp",
        "--pulse-pressure",
        dest="central_pp",
        type=float,
        metavar="MMHG",
        help="central (aortic) pulse pressure in mmHg for aortic distensibility (UK Biobank field "
        "12678; below 10 mmHg it is discarded, as the anchor does); without it distensibility is "
        "NaN and 'notes' says why",
    )
    p.add_argument(
        "--atrial-method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help="how atrial lengths are measured (config phenotypes.atrial_function.method): anchor "
        "(ukbb_cardiac's, default) or sampled",
    )
    p.add_argument("--families", nargs="+", help="families to run (default: all)")
    p.add_argument(
        "--view",
        nargs=2,
        action="append",
        default=[],
        metavar=("VIEW", "SEG"),
        help="another view's segmentation (repeatable): VIEW is a view (la_2ch, la_4ch, ao: the "
        "file is in that view's own labels, la_4ch 1 LV, 2 myocardium, 3 RV, 4 LA, 5 RA) or the "
        "manifest column that names the file's convention (seg_la_2ch: 1 LA; seg_la_4ch: atria "
        "only, 1 LA, 2 RA, as ukbb_cardiac writes it; seg4_la_4ch; seg_ao), e.g. --view "
        "seg_la_4ch seg_la_4ch.nii.gz. atrial_function reads la_2ch and la_4ch, aortic_function ao",
    )
    p.add_argument("--eid", default="", help="subject id written into the output")
    p.add_argument("--out", type=Path, help="write JSON here (default: stdout)")
    p.set_defaults(func=run)


def check_arguments(args: argparse.Namespace) -> None:
    """The input contract on the command's arguments: every covariate option the command has
    (an option whose destination is a covariate the contract knows, e.g. ``--height-cm``) within
    human ranges, and no output path that is one of the inputs; ``InputError`` naming the option
    and the value."""
    given = {n: getattr(args, n) for n in covariate_ranges() if getattr(args, n, None) is not None}
    options = {n: "--" + n.replace("_", "-") for n in given}
    problems = check_covariate_values(given, options)
    problems += [f"{options[n]} nan: not a number" for n, v in given.items() if math.isnan(v)]
    if problems:
        raise InputError("; ".join(problems))
    refuse_bad_output(args.out)
    refuse_overwriting_inputs([args.out], [args.seg, args.image, *(p for _, p in args.view)])


def view_and_column(name: str) -> tuple[ViewSpec, str]:
    """The view a ``--view`` name means and the convention of its file: a view's name (its own
    labels) or a manifest column of provided segmentations (``seg_la_4ch``: atria only)."""
    if name in VIEWS:
        return VIEWS[name], VIEWS[name].seg_name
    for spec in VIEWS.values():
        if name in spec.provided:
            return spec, name
    columns = [c for spec in VIEWS.values() for c in spec.provided]
    raise ValueError(
        f"--view {name}: not a view ({', '.join(VIEWS)}) nor a segmentation column "
        f"({', '.join(columns)})"
    )


def map_conventions(ctx, given: list[tuple[str, Path]]) -> None:
    """Relabel each view given under a manifest column onto its view's labels (seg_la_4ch's
    1 LA, 2 RA become la_4ch's 4 and 5), naming the file when a label is not in its convention."""
    for name, path in given:
        spec, column = view_and_column(name)
        if column != spec.seg_name and spec.name in ctx.views:
            data = ctx.views[spec.name]
            try:
                data.labels = spec.map_provided(column, data.labels)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None


def with_options(line: str) -> str:
    """A reason as a user of this command reads it: covariates named by their options."""
    for covariate, option in COVARIATE_OPTIONS.items():
        line = line.replace(covariate, option)
    return line.replace("covariates --", "give --").replace("covariate --", "give --")


def notes_on_nan(ctx, values: dict[str, float]) -> list[str]:
    """The families' notes and reasons, and a last line for any NaN value they did not explain,
    so that every NaN in the output is named in its notes."""
    notes = [*ctx.notes, *reason_lines(ctx)]
    unexplained = [
        k
        for k, v in values.items()
        if isinstance(v, float) and math.isnan(v) and k not in ctx.reasons
    ]
    if unexplained:
        why = "see the notes above" if ctx.notes else "no reason recorded by its family"
        notes.append(f"{', '.join(unexplained)}: not computed ({why})")
    return notes


def run(args: argparse.Namespace) -> int:
    covariates = {k: getattr(args, k) for k in COVARIATE_OPTIONS}
    covariates = {k: v for k, v in covariates.items() if v is not None}
    try:
        check_arguments(args)
        families = resolve_families(args.families)
        ctx = context_from_files(
            args.seg,
            args.image,
            covariates,
            ed_frame_mode=args.ed_frame.replace("-", "_"),
            eid=args.eid or args.seg.name,
            views={view_and_column(name)[0].name: path for name, path in args.view},
            options={"atrial_function": {"method": args.atrial_method}},
        )
        map_conventions(ctx, args.view)
        values = compute_phenotypes(ctx, families)
    except (ImageReadError, PhenotypeError, ValueError, OSError) as exc:
        log.error("%s", readable(exc))
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
        "notes": [with_options(line) for line in notes_on_nan(ctx, values)],
    }
    text = json.dumps(doc, indent=2)
    if args.out:
        try:
            with atomic_path(args.out) as tmp:
                tmp.write_text(text + "\n")
        except OSError as exc:
            log.error("%s: cannot write (%s)", args.out, readable(exc))
            return 1
    else:
        sys.stdout.write(text + "\n")
    return 0
