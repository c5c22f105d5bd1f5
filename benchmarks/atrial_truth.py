"""Atrial phenotypes against the synthetic heart's truth, in two steps, so each error has a
cause: (1) the truth labels' atrial areas against the analytic cut of each view's plane (the
renderer), (2) the area-length method on the truth labels against the analytic 3D atria (the
method's own error). The models' part (segmentation Dice, phenotypes from model labels, speed)
is benchmarks/view_models.py.

    python benchmarks/atrial_truth.py --cohort DIR            # an existing synthetic cohort
    python benchmarks/atrial_truth.py --n 40 --seed 202       # generate one (held out: seed 202)
    python benchmarks/atrial_truth.py --cohort DIR --method sampled   # the earlier length method

Writes results/benchmarks/atrial_truth.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import pandas as pd

from cardiopheno.io.tables import read_any
from cardiopheno.phenotypes import atrial_function as af
from cardiopheno.phenotypes.area_length import DEFAULT_METHOD, METHODS
from cardiopheno.phenotypes.registry import context_from_files
from cardiopheno.synth.cohort import generate_cohort

IDPS = ("LAV_max", "LAV_min", "LASV", "LAEF", "RAV_max", "RAV_min", "RASV", "RAEF")
VIEWS = ("la_2ch", "la_4ch")


def errors(est: pd.DataFrame, truth: pd.DataFrame) -> dict:
    out = {}
    for idp in IDPS:
        d = (est[idp] - truth.loc[est.index, idp]).dropna()
        if len(d):
            out[idp] = {"mae": float(d.abs().mean()), "bias": float(d.mean()), "n": len(d)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cohort", default=None, help="existing synthetic cohort folder")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=202)
    ap.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS, help="length method")
    ap.add_argument("--out", default="results/benchmarks/atrial_truth.json")
    args = ap.parse_args()
    if args.cohort:
        root = Path(args.cohort)
    else:
        root = Path(tempfile.mkdtemp(prefix="atrial_truth_"))
        generate_cohort(root, args.n, args.seed, fault_fraction=0.0)
    manifest = read_any(root / "manifest.csv")
    truth = read_any(root / "truth" / "idps.parquet").set_index("eid")
    curves = read_any(root / "truth" / "atrial_curves.parquet")
    result: dict = {
        "cohort": str(root),
        "n_subjects": len(manifest),
        "machine": platform.machine(),
        "method": args.method,
    }

    # (1) rendering: voxel areas against the analytic cut of the plane
    area = {}
    for tag in ("LA_2ch", "LA_4ch", "RA_4ch"):
        rel = curves[f"{tag}_area_mm2"] / curves[f"{tag}_area_mm2_analytic"] - 1.0
        area[tag] = {
            "median_abs_rel": float(rel.abs().median()),
            "max_abs_rel": float(rel.abs().max()),
        }
    result["truth_label_area_vs_analytic"] = area

    # (2) the area-length method on the truth labels
    rows = {}
    lab = root / "truth" / "labels"
    for eid in manifest["eid"].astype(str):
        ctx = context_from_files(
            lab / f"{eid}.nii.gz",
            eid=eid,
            views={v: lab / f"{eid}_{v}.nii.gz" for v in VIEWS},
            options={af.FAMILY: {"method": args.method}},
        )
        rows[eid] = af.compute(ctx)
    method = pd.DataFrame.from_dict(rows, orient="index")
    result["area_length_on_truth_labels_vs_analytic"] = errors(method, truth)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
