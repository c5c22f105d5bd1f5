"""Aortic distensibility against the synthetic truth: accuracy, resolution limit, age trend.

1. Accuracy: subjects of the synthetic population rendered as aortic cines
   (``cardiopheno.synth.aorta``, 100 frames); the ``aortic_function`` family on their truth
   labels against the analytic truth (relative error of areas and distensibility per vessel), and
   the same formula on the partial-volume (fractional) areas, which isolates what labelling
   whole pixels costs. The aortic QC on the same clean labels (false flags).
2. Resolution: the first subjects re-rendered at several pixel sizes.
3. Age trend: OLS distensibility ~ age + sex (statsmodels, HC3) on a large population table
   (the true values) and on the rendered subjects' measured values, against the generator's
   coefficients (``AORTA_COEFFICIENTS``).

Writes results/benchmarks/aorta_truth.json; BENCHMARKS.md ("Aorta") quotes it.

Usage: python benchmarks/aorta_truth.py [--subjects 200 --accuracy-subjects 50 --seed 3]
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
import statsmodels.formula.api as smf
from phenotype_speed import _cpu_name  # benchmarks/ is on sys.path when run as a script

import cardiopheno
from cardiopheno.phenotypes import SubjectContext, ViewData, compute_phenotypes, resolve_families
from cardiopheno.qc.aorta import check_aorta
from cardiopheno.synth.aorta import distensibility, simulate_aorta
from cardiopheno.synth.population import AORTA_COEFFICIENTS, sample_population

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "aorta_truth.json"
VESSELS = ("AAo", "DAo")


def _summary(rel: pd.Series) -> dict:
    a = rel.abs()
    return {
        "median_abs": float(a.median()),
        "p90_abs": float(a.quantile(0.9)),
        "max_abs": float(a.max()),
        "mean_signed": float(rel.mean()),
    }


def measure(pop: pd.DataFrame, seed: int, indices, pixel_mm: float | None = None):
    """Render, measure with the phenotype family and QC; one row per subject."""
    fams = resolve_families(["aortic_function"])
    rows = []
    for i in indices:
        row = pop.iloc[i]
        t0 = time.process_time()
        s = simulate_aorta(row, seed, i, pixel_mm=pixel_mm)
        cpu = time.process_time() - t0
        ctx = SubjectContext(None, None, covariates={"central_pp": row["central_pp"]})
        ctx.views["ao"] = ViewData(s.labels, s.zooms[:3], s.zooms[3])
        out = compute_phenotypes(ctx, fams)
        qc = check_aorta(s.labels, s.image)
        rec = {
            "index": i,
            "age": row["age"],
            "sex": row["sex"],
            "pixel_mm": s.truth["pixel_mm"],
            "render_cpu_s": cpu,
            "qc_failed": ",".join(r.name for r in qc if r.passed is False),
        }
        for v in VESSELS:
            frac = s.curves[f"{v}_area_mm2_fractional"]
            rec[f"{v}_D"] = out[f"{v}_distensibility"]
            rec[f"{v}_D_true"] = s.truth[f"{v}_distensibility_analytic"]
            rec[f"{v}_D_fractional"] = distensibility(frac.max(), frac.min(), row["central_pp"])
            for end in ("max", "min"):
                rec[f"{v}_{end}_area_rel"] = (
                    out[f"{v}_{end}_area"] / s.truth[f"{v}_{end}_area_analytic"] - 1.0
                )
            rec[f"{v}_dA_px"] = (out[f"{v}_max_area"] - out[f"{v}_min_area"]) / s.zooms[0] ** 2
        rows.append(rec)
    return pd.DataFrame(rows)


def accuracy(df: pd.DataFrame) -> dict:
    res: dict = {"n": len(df), "pixel_mm": [float(df.pixel_mm.min()), float(df.pixel_mm.max())]}
    for v in VESSELS:
        rel = df[f"{v}_D"] / df[f"{v}_D_true"] - 1.0
        rel_frac = df[f"{v}_D_fractional"] / df[f"{v}_D_true"] - 1.0
        res[v] = {
            "distensibility_rel_error": _summary(rel),
            "distensibility_rel_error_fractional_areas": _summary(rel_frac),
            "max_area_rel_error": _summary(df[f"{v}_max_area_rel"]),
            "min_area_rel_error": _summary(df[f"{v}_min_area_rel"]),
            "true_D_range": [float(df[f"{v}_D_true"].min()), float(df[f"{v}_D_true"].max())],
            "median_area_change_pixels": float(df[f"{v}_dA_px"].median()),
        }
    return res


def trend(df: pd.DataFrame, column: str) -> dict:
    out = {}
    for v in VESSELS:
        name = f"{v}_distensibility"
        data = df.rename(columns={column.format(v=v): "D"})
        fit = smf.ols("D ~ age + sex", data=data).fit(cov_type="HC3")
        out[v] = {
            term: {
                "estimate": float(fit.params[term]),
                "ci95": [float(x) for x in fit.conf_int().loc[term]],
                "true": AORTA_COEFFICIENTS[name][term],
                "covers_true": bool(
                    fit.conf_int().loc[term, 0]
                    <= AORTA_COEFFICIENTS[name][term]
                    <= fit.conf_int().loc[term, 1]
                ),
            }
            for term in ("age", "sex")
        }
        out[v]["n"] = int(fit.nobs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=200, help="rendered subjects (age trend)")
    ap.add_argument("--accuracy-subjects", type=int, default=50)
    ap.add_argument("--resolution-subjects", type=int, default=20)
    ap.add_argument("--pixels", type=float, nargs="+", default=[1.0, 1.7, 2.5])
    ap.add_argument("--population", type=int, default=20000, help="population table size")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    pop = sample_population(max(args.subjects, args.population), args.seed)
    rendered = measure(pop, args.seed, range(args.subjects))
    result: dict = {
        "cardiopheno": cardiopheno.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "note": "shared with other jobs"},
        "seed": args.seed,
        "accuracy": accuracy(rendered.iloc[: args.accuracy_subjects]),
        "accuracy_all_rendered": accuracy(rendered),
        "render_cpu_s_median": float(rendered["render_cpu_s"].median()),
        "qc_false_flags_on_truth_labels": {
            "n": len(rendered),
            "flagged": int((rendered["qc_failed"] != "").sum()),
            "checks": rendered.loc[rendered["qc_failed"] != "", "qc_failed"]
            .value_counts()
            .to_dict(),
        },
    }
    res = {}
    for px in args.pixels:
        df = measure(pop, args.seed, range(args.resolution_subjects), pixel_mm=px)
        res[f"{px:g}"] = {
            v: {
                "D_median_abs_rel_error": float(
                    (df[f"{v}_D"] / df[f"{v}_D_true"] - 1).abs().median()
                ),
                "D_median_abs_rel_error_fractional": float(
                    (df[f"{v}_D_fractional"] / df[f"{v}_D_true"] - 1).abs().median()
                ),
                "median_area_change_pixels": float(df[f"{v}_dA_px"].median()),
            }
            for v in VESSELS
        }
    result["resolution"] = {"n": args.resolution_subjects, "by_pixel_mm": res}
    table = pop.iloc[: args.population]
    result["age_trend"] = {
        "population_true_values": trend(table, "{v}_distensibility"),
        "rendered_measured_values": trend(rendered, "{v}_D"),
    }
    result["wall_s"] = time.perf_counter() - t0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
