"""Aortic distensibility from the shipped aortic model against the synthetic truth, and the age
trend the association stage recovers from it (issue #16).

Subjects of the synthetic population (seed 303: never used in training, which used 101) are
rendered as aortic cines (``cardiopheno.synth.aorta``, 100 frames); each is segmented by the
shipped model (``Segmenter(view="ao")``) and measured by the ``aortic_function`` family. Per
vessel and subject, the area curves of the model's labels and of the truth labels are compared
with the analytic curve: the slope of a line through (analytic, measured) areas (below 1: the
measurement under-reads the area change) and the per-frame residual (noise). Distensibility is
taken from the curves as the anchor does (maximum and minimum of the per-frame areas) and after
a periodic Gaussian smoothing of the curve over ``--sigmas`` frames, and from "soft" areas (the
model's class probability summed over the pixels within 3 of its argmax label, times the pixel
area: a sub-pixel area, from one more network pass), so each estimator's error against the
analytic truth and the truth labels' value is known. Finally the association stage's
model (``cardiopheno.stats.association.fit_age_sex``: IDP ~ age * sex + bsa_m2, HC3) is fitted to
the analytic, truth-label and model-label distensibilities; the generator's slopes are -0.13
(AAo) and -0.11 (DAo) x 10^-3 mmHg^-1 per year in both sexes.

Usage: python benchmarks/aorta_model.py [--subjects 100 --seed 303 --threads 1]
Writes results/benchmarks/aorta_model.json; BENCHMARKS.md ("Aorta") quotes it.
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
from cardiopheno.segment.infer import FIELD_MARGIN, Segmenter
from cardiopheno.segment.transforms import label_window, target_pixel
from cardiopheno.stats.association import fit_age_sex
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


# dilation within each frame of a frames x H x W stack
_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)


def soft_areas(seg: Segmenter, image: np.ndarray, zooms) -> dict[str, np.ndarray]:
    """Per-frame soft area (mm2) of each vessel: the network's probability summed over the
    pixels within 3 of its argmax label, on the network grid (the segmenter's own window)."""
    prep = seg.prepare(image, zooms[:2])
    stack = prep.stack
    window = label_window(
        seg.predict_labels(stack[:1]).numpy(), seg.pre_cfg.roi, FIELD_MARGIN, seg.stride
    )
    if window is not None:
        stack, _ = seg.pipe.crop_to_window(stack, *window)
    probs = seg.predict(stack, probabilities=True).probs.numpy()  # frames x classes x h x w
    net = probs.argmax(axis=1)
    pixel = float(np.prod(target_pixel(seg.pre_cfg, tuple(zooms[:2]))))
    out = {}
    for v, label in zip(VESSELS, (1, 2), strict=True):
        near = ndimage.binary_dilation(net == label, _IN_PLANE, iterations=3)
        out[v] = (probs[:, label] * near).sum(axis=(1, 2)) * pixel
    return out


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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pop = sample_population(args.subjects, args.seed)
    seg = Segmenter(view="ao", device="cpu", threads=args.threads)
    fams = resolve_families(["aortic_function"])
    rows, t0 = [], time.perf_counter()
    for i in range(len(pop)):
        row = pop.iloc[i]
        s = simulate_aorta(row, args.seed, i)
        pp = float(row["central_pp"])
        model = seg.segment_array(s.image.astype(np.float32), s.zooms[:2]).labels
        rec = {"eid": row["eid"], "age": row["age"], "sex": row["sex"], "bsa_m2": row["bsa_m2"]}
        for source, labels in (("truth", s.labels), ("model", model)):
            ctx = SubjectContext(None, None, covariates={"central_pp": pp})
            ctx.views["ao"] = ViewData(labels, s.zooms[:3], s.zooms[3])
            out = compute_phenotypes(ctx, fams)
            curves = area_curves(labels, s.zooms[0] * s.zooms[1])
            for v in VESSELS:
                analytic = s.curves[f"{v}_area_mm2_analytic"].to_numpy()
                rec[f"{v}_D_{source}"] = out[f"{v}_distensibility"]
                rec[f"{v}_slope_{source}"], rec[f"{v}_noise_{source}"] = _slope_and_noise(
                    curves[v], analytic
                )
                for sigma in args.sigmas:
                    a = ndimage.gaussian_filter1d(curves[v], sigma, mode="wrap")
                    rec[f"{v}_D_{source}_smooth{sigma:g}"] = distensibility(a.max(), a.min(), pp)
        soft = soft_areas(seg, s.image.astype(np.float32), s.zooms)
        for v in VESSELS:
            rec[f"{v}_D_analytic"] = s.truth[f"{v}_distensibility_analytic"]
            rec[f"{v}_D_soft"] = distensibility(soft[v].max(), soft[v].min(), pp)
            analytic = s.curves[f"{v}_area_mm2_analytic"].to_numpy()
            rec[f"{v}_slope_soft"], rec[f"{v}_noise_soft"] = _slope_and_noise(soft[v], analytic)
            rec[f"{v}_soft_mean_bias"] = float(soft[v].mean() / analytic.mean() - 1.0)
        rows.append(rec)
    seconds = time.perf_counter() - t0
    df = pd.DataFrame(rows)
    estimators = ["truth", "model", "soft"] + [
        f"{src}_smooth{s:g}" for src in ("truth", "model") for s in args.sigmas
    ]
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
        for src in ("truth", "model", "soft"):
            errors[v][f"curve_{src}"] = {
                "slope_median": float(df[f"{v}_slope_{src}"].median()),
                "noise_share_of_change_median": float(df[f"{v}_noise_{src}"].median()),
            }
        errors[v]["curve_soft"]["mean_area_bias_median"] = float(df[f"{v}_soft_mean_bias"].median())
    # the association stage's model on each version of the distensibility
    table = df.copy()
    idps = []
    for v in VESSELS:
        for est in ["analytic", *estimators]:
            name = f"{v}_D_{est}".replace(".", "_")
            table[name] = df[f"{v}_D_{est}"]
            idps.append(name)
    assoc = fit_age_sex(table, idps, covariates=["bsa_m2"], cov_type="HC3", age_centre=60.0)
    trend = age_sex_terms(assoc)
    result = {
        "subjects": len(df),
        "seed": args.seed,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} thread(s), "
        f"load average {os.getloadavg()[0]:.1f} at the end",
        "seconds_total": seconds,
        "generator_age_slope": {v: AORTA_COEFFICIENTS[f"{v}_distensibility"] for v in VESSELS},
        "errors": errors,
        "age_sex_association": trend,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, default=str))
    df.to_csv(OUT.with_suffix(".csv"), index=False)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
