"""Aortic distensibility from the aortic model against the synthetic truth, and the age trend the
association stage recovers from it (issue #16).

Subjects of the synthetic population (seed 303: never used in training, which used 101 and 103)
are rendered as aortic cines (``cardiopheno.synth.aorta``, 100 frames); each is segmented by the
model (``Segmenter(view="ao")``, the shipped one unless ``--checkpoint``) and measured by the
``aortic_function`` family as the workflow does. A model trained on partial-volume targets
measures sub-pixel areas from its probabilities (``Segmentation.areas``, estimator ``model``);
the family smooths them over time (``phenotypes.aortic_function.smooth_ms``, 10 ms by default;
``model_unsmoothed`` without). Its labels' pixel counts (the anchor's measure) are kept as
``model_labels``; the truth labels' pixel counts as ``truth``; ``<estimator>_smooth<s>`` takes
that estimator's raw curve smoothed over ``s`` frames (``--sigmas``; Gaussian SD, periodic). Per
vessel and subject, each raw area curve is compared with the analytic one: the slope of a line
through (analytic, measured) areas (below 1: the measurement under-reads the area change) and
the per-frame residual (noise); each distensibility with the analytic truth and the truth labels'
value. Finally the association stage's
model (``cardiopheno.stats.association.fit_age_sex``: IDP ~ age * sex + bsa_m2, HC3) is fitted to
each distensibility; the generator's slopes are -0.13 (AAo) and -0.11 (DAo) x 10^-3 mmHg^-1 per
year in both sexes.

Usage: python benchmarks/aorta_model.py [--subjects 100 --seed 303 --threads 1 --checkpoint P]
Writes results/benchmarks/aorta_model.json (``--out``); BENCHMARKS.md ("Aorta") quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from cardiopheno.phenotypes import SubjectContext, ViewData, compute_phenotypes, resolve_families
from cardiopheno.phenotypes.aortic_function import area_curves
from cardiopheno.segment.infer import ComputeOptions, Segmenter
from cardiopheno.stats.association import fit_age_sex
from cardiopheno.stats.schema import NotEstimable
from cardiopheno.synth.aorta import distensibility, simulate_aorta
from cardiopheno.synth.population import AORTA_COEFFICIENTS, sample_population

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "aorta_model.json"
VESSELS = ("AAo", "DAo")


def _slope_and_noise(measured: np.ndarray, analytic: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of measured on analytic area, and the residual SD as a share of the
    analytic area change."""
    slope, intercept = np.polyfit(analytic, measured, 1)
    resid = measured - (intercept + slope * analytic)
    return float(slope), float(resid.std() / np.ptp(analytic))


def _summary(rel: pd.Series) -> dict:
    return {
        "median_abs": float(rel.abs().median()),
        "p90_abs": float(rel.abs().quantile(0.9)),
        "median_signed": float(rel.median()),
    }


def age_sex_terms(assoc: pd.DataFrame) -> dict:
    """``{idp: {term: {"estimate", "ci95"}}}`` for the age (women), age_male and sex rows of an
    associations table (``fit_age_sex``'s, or the workflow's associations.parquet)."""
    trend: dict = {}
    for r in assoc[assoc["term"].isin(["age", "age_male", "sex"])].itertuples():
        trend.setdefault(r.idp, {})[r.term] = {
            "estimate": float(r.estimate),
            "ci95": [float(r.ci_low), float(r.ci_high)],
        }
    return trend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--seed", type=int, default=303)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--checkpoint", default=None, help="aortic model (default: the shipped one)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pop = sample_population(args.subjects, args.seed)
    seg = Segmenter(
        args.checkpoint, view="ao", device="cpu", compute=ComputeOptions(threads=args.threads)
    )
    fams = resolve_families(["aortic_function"])
    sources = ["truth", "model_labels"] + (["model"] if seg.subpixel_areas else [])
    rows, t0 = [], time.perf_counter()
    for i in range(len(pop)):
        row = pop.iloc[i]
        s = simulate_aorta(row, args.seed, i)
        pp = float(row["central_pp"])
        out = seg.segment_array(s.image.astype(np.float32), s.zooms[:2])
        rec = {"eid": row["eid"], "age": row["age"], "sex": row["sex"], "bsa_m2": row["bsa_m2"]}
        for source in sources:
            labels = s.labels if source == "truth" else out.labels
            areas = None
            if source == "model":
                areas = {c: out.areas[:, j] for j, c in enumerate(seg.view.classes)}
            ctx = SubjectContext(None, None, covariates={"central_pp": pp})
            ctx.views["ao"] = ViewData(labels, s.zooms[:3], s.zooms[3], areas=areas)
            phen = compute_phenotypes(ctx, fams)
            curves = area_curves(labels, s.zooms[0] * s.zooms[1], areas)
            if source == "model":  # the same sub-pixel curves without the temporal smoothing
                ctx.options = {"aortic_function": {"smooth_ms": 0.0}}
                raw = compute_phenotypes(ctx, fams)
                for v in VESSELS:
                    rec[f"{v}_D_model_unsmoothed"] = raw[f"{v}_distensibility"]
            for v in VESSELS:
                analytic = s.curves[f"{v}_area_mm2_analytic"].to_numpy()
                rec[f"{v}_D_{source}"] = phen[f"{v}_distensibility"]
                rec[f"{v}_slope_{source}"], rec[f"{v}_noise_{source}"] = _slope_and_noise(
                    curves[v], analytic
                )
                rec[f"{v}_mean_bias_{source}"] = float(curves[v].mean() / analytic.mean() - 1.0)
                for sigma in args.sigmas:
                    a = ndimage.gaussian_filter1d(curves[v], sigma, mode="wrap")
                    rec[f"{v}_D_{source}_smooth{sigma:g}"] = distensibility(a.max(), a.min(), pp)
        for v in VESSELS:
            rec[f"{v}_D_analytic"] = s.truth[f"{v}_distensibility_analytic"]
        rows.append(rec)
    seconds = time.perf_counter() - t0
    df = pd.DataFrame(rows)
    estimators = (
        sources
        + (["model_unsmoothed"] if seg.subpixel_areas else [])
        + [f"{src}_smooth{s:g}" for src in sources for s in args.sigmas]
    )
    errors = {}
    for v in VESSELS:
        ana, lab = df[f"{v}_D_analytic"], df[f"{v}_D_truth"]
        errors[v] = {
            est: {
                "vs_analytic": _summary((df[f"{v}_D_{est}"] - ana) / ana),
                "vs_truth_labels": _summary((df[f"{v}_D_{est}"] - lab) / lab),
            }
            for est in estimators
        }
        for src in sources:
            errors[v][f"curve_{src}"] = {
                "slope_median": float(df[f"{v}_slope_{src}"].median()),
                "noise_share_of_change_median": float(df[f"{v}_noise_{src}"].median()),
                "mean_area_bias_median": float(df[f"{v}_mean_bias_{src}"].median()),
            }
    # the association stage's model on each version of the distensibility
    table = df.copy()
    idps = []
    for v in VESSELS:
        for est in ["analytic", *estimators]:
            name = f"{v}_D_{est}".replace(".", "_")
            table[name] = df[f"{v}_D_{est}"]
            idps.append(name)
    try:
        assoc = fit_age_sex(table, idps, covariates=["bsa_m2"], cov_type="HC3", age_centre=60.0)
        trend = age_sex_terms(assoc)
    except NotEstimable as exc:  # a handful of subjects (a smoke run)
        trend = {"not_estimable": str(exc)}
    result = {
        "subjects": len(df),
        "seed": args.seed,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} thread(s), "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        "seconds_total": seconds,
        "checkpoint": str(seg.checkpoint),
        "subpixel_areas": seg.subpixel_areas,
        "generator_age_slope": {v: AORTA_COEFFICIENTS[f"{v}_distensibility"] for v in VESSELS},
        "errors": errors,
        "age_sex_association": trend,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    df.to_csv(out.with_suffix(".csv"), index=False)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
