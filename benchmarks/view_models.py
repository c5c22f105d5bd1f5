"""The shipped models of the views beside the short axis on synthetic subjects never used in
training: Dice per structure against the truth labels (all frames pooled per subject), the
phenotypes from the model's labels against the generator's truth, and seconds per subject.

    python benchmarks/view_models.py --cohort DIR     # a synthetic cohort (cardiopheno synth)

Writes results/benchmarks/view_models.json. Training used seed 101; use another seed here.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cardiopheno.io.nifti import load_cine
from cardiopheno.io.tables import read_any
from cardiopheno.phenotypes import compute_phenotypes, resolve_families
from cardiopheno.phenotypes.registry import context_from_files
from cardiopheno.segment.infer import ComputeOptions, PassOptions, Segmenter, dice

VIEWS = ("la_2ch", "la_4ch", "ao")
IDPS = (
    "LAV_max", "LAV_min", "LASV", "LAEF", "RAV_max", "RAV_min", "RASV", "RAEF",
    "AAo_max_area", "AAo_min_area", "AAo_distensibility",
    "DAo_max_area", "DAo_min_area", "DAo_distensibility",
)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--views", nargs="+", default=list(VIEWS), choices=VIEWS)
    ap.add_argument(
        "--flip-ensemble", type=int, default=None, help="override the views' default (0-3)"
    )
    ap.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="VIEW=PATH",
        help="another model for a view (default: the shipped ones)",
    )
    ap.add_argument(
        "--atrial-method",
        default="anchor",
        choices=("anchor", "sampled"),
        help="how atrial lengths are measured (phenotypes.atrial_function.method)",
    )
    ap.add_argument("--out", default="results/benchmarks/view_models.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.cohort)
    manifest = read_any(root / "manifest.csv")
    truth = read_any(root / "truth" / "idps.parquet").set_index("eid")
    cov = read_any(root / "covariates.csv").set_index("eid")
    lab = root / "truth" / "labels"
    views = tuple(args.views)
    passes = (
        PassOptions()
        if args.flip_ensemble is None
        else PassOptions(flip_ensemble=args.flip_ensemble)
    )
    ckpts = dict(c.split("=", 1) for c in args.checkpoint)
    segs = {
        v: Segmenter(
            ckpts.get(v),
            view=v,
            device="cpu",
            compute=ComputeOptions(threads=args.threads),
            passes=passes,
        )
        for v in views
    }
    fams = resolve_families(["atrial_function", "aortic_function"])
    dices: dict = {v: {} for v in views}
    seconds: dict = {v: [] for v in views}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rec in manifest.itertuples(index=False):
            eid = str(rec.eid)
            paths = {}
            for v in views:
                paths[v] = Path(tmp) / f"{eid}_{v}.nii.gz"
                t0 = time.perf_counter()
                segs[v].segment_file(root / getattr(rec, v), paths[v])
                seconds[v].append(time.perf_counter() - t0)
                pred = load_cine(paths[v], dtype=np.uint8).data
                ref = load_cine(lab / f"{eid}_{v}.nii.gz", dtype=np.uint8).data
                for c, key in segs[v].view.keys.items():
                    dices[v].setdefault(key, []).append(dice(pred == c, ref == c))
            ctx = context_from_files(
                lab / f"{eid}.nii.gz",
                covariates=cov.loc[eid].to_dict(),
                eid=eid,
                views=paths,
                options={"atrial_function": {"method": args.atrial_method}},
            )
            rows[eid] = compute_phenotypes(ctx, fams)
    est = pd.DataFrame.from_dict(rows, orient="index")
    errors = {}
    for idp in (i for i in IDPS if i in est.columns):
        d = (est[idp] - truth.loc[est.index, idp]).dropna()
        rel = (d / truth.loc[d.index, idp]).abs()
        errors[idp] = {
            "mae": float(d.abs().mean()),
            "bias": float(d.mean()),
            "median_abs_rel": float(rel.median()),
            "n": len(d),
        }
    result = {
        "cohort": str(root),
        "n_subjects": len(manifest),
        "machine": f"{platform.machine()} ({platform.processor() or 'cpu'}), {args.threads} threads",
        "dice": {v: {k: float(np.mean(d)) for k, d in per.items()} for v, per in dices.items()},
        "dice_min": {v: {k: float(np.min(d)) for k, d in per.items()} for v, per in dices.items()},
        "seconds_per_subject": {v: float(np.median(s)) for v, s in seconds.items()},
        "phenotype_errors_vs_truth": errors,
        "checkpoints": {v: s.checkpoint.name for v, s in segs.items()},
        "flip_ensemble": {v: len(s.flips) for v, s in segs.items()},
        "atrial_method": args.atrial_method,
        "note": "phenotype truth: analytic (atria: 3D phantom volumes; aorta: voxelised areas)",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
