"""The age trend of aortic distensibility as the workflow's association stage recovers it (issue #16).

Reads a finished workflow run on a synthetic cohort (``cardiopheno synth``) whose aortic cines
were segmented by the shipped aortic model: the association stage's table
(``association/associations.parquet``: IDP ~ age * sex + covariates, robust SEs, age centred)
and the analysis table it was fitted on (``phenotypes.parquet`` and ``qc.parquet`` through
``cardiopheno.stats.pipeline.load_frame``, with the cohort's covariates: QC-passed subjects, view
QC masks applied). Compares, per vessel, the stage's age slopes (women: term ``age``; men:
``age_male``) of distensibility and of the maximum and minimum areas with

- the generator's slope (``AORTA_COEFFICIENTS``: the same in both sexes; areas have none), and
  whether each 95 % interval covers it,
- the same model (``fit_age_sex``, the stage's formula, covariance and age centre, read from its
  table) fitted to the cohort's truth table (``truth/idps.parquet``): the truth labels' values
  and the analytic values, on the subjects the stage used and on the whole cohort,

and gives the per-subject relative error of the workflow's values against the truth labels' and
the analytic ones, and what QC left out.

Usage: python benchmarks/aorta_age_trend.py --results RUN/results --cohort COHORT
Writes results/benchmarks/aorta_age_trend.json; BENCHMARKS.md ("Aorta") quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

# benchmarks/ is on sys.path when run as a script
from aorta_model import _summary, age_sex_terms
from phenotype_speed import _cpu_name

import cardiopheno
from cardiopheno.io.tables import file_metadata, read_any, read_table
from cardiopheno.stats.association import fit_age_sex
from cardiopheno.stats.data import analysis_frame
from cardiopheno.stats.pipeline import load_frame
from cardiopheno.synth.population import AORTA_COEFFICIENTS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "aorta_age_trend.json"
VESSELS = ("AAo", "DAo")
IDPS = [f"{v}_{k}" for v in VESSELS for k in ("distensibility", "max_area", "min_area")]


def stage_model(assoc: pd.DataFrame) -> dict:
    """The association stage's covariates, covariance type and age centre, from its own rows."""
    row = assoc.iloc[0]
    rhs = str(row["formula"]).split("~", 1)[1]
    terms = [t.strip() for t in rhs.split("+")]
    if not terms or re.sub(r"\s", "", terms[0]) != "age*sex":
        raise ValueError(f"unexpected association formula: {row['formula']}")
    return {
        "covariates": terms[1:],
        "cov_type": str(row["cov_type"]),
        "age_centre": float(row["age_centre"]),
        "formula": str(row["formula"]),
    }


def fit(frame: pd.DataFrame, model: dict) -> dict:
    """``fit_age_sex`` with the stage's settings on the IDPs present; age/sex terms and n."""
    idps = [c for c in IDPS if c in frame.columns and frame[c].notna().any()]
    assoc = fit_age_sex(
        frame,
        idps,
        covariates=model["covariates"],
        cov_type=model["cov_type"],
        age_centre=model["age_centre"],
    )
    return with_n(assoc)


def with_n(assoc: pd.DataFrame) -> dict:
    terms = age_sex_terms(assoc)
    for idp, n in assoc.groupby("idp")["n"].first().items():
        if idp in terms:
            terms[idp]["n"] = int(n)
    return terms


def covers(ci: list[float], value: float) -> bool:
    return bool(ci[0] <= value <= ci[1])


def truth_frame(truth: pd.DataFrame, column: str, cov: pd.DataFrame) -> pd.DataFrame:
    """The truth table's values (``{idp}`` or ``{idp}_analytic``) as an analysis table of every
    subject (no QC), with the covariates as the stage reads them (bsa_m2 from height and weight)."""
    values = pd.DataFrame({"eid": truth["eid"].astype(str)})
    for idp in IDPS:
        values[idp] = truth[column.format(idp=idp)].astype(float).to_numpy()
    return analysis_frame(values, None, cov)


def errors(measured: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Per-subject relative error of the measured values against the truth labels' and the
    analytic ones (subjects with a measured value), and the absolute error against the former."""
    m = measured.set_index(measured["eid"].astype(str))
    t = truth.set_index(truth["eid"].astype(str)).loc[m.index]
    out = {}
    for idp in IDPS:
        ok = m[idp].notna()
        diff = m.loc[ok, idp] - t.loc[ok, idp]
        out[idp] = {
            "n": int(ok.sum()),
            "vs_truth_labels_mae": float(diff.abs().mean()),
            "vs_truth_labels_bias": float(diff.mean()),
            "vs_truth_labels": _summary(m.loc[ok, idp] / t.loc[ok, idp] - 1.0),
            "vs_analytic": _summary(m.loc[ok, idp] / t.loc[ok, f"{idp}_analytic"] - 1.0),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="the workflow's results folder")
    ap.add_argument("--cohort", type=Path, required=True, help="the synthetic cohort's folder")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--covariates", type=Path, help="default: COHORT/covariates.csv")
    args = ap.parse_args()
    res, cohort = args.results, args.cohort
    cov_path = args.covariates or cohort / "covariates.csv"

    assoc_all = read_table(res / "association" / "associations.parquet")
    assoc = assoc_all[assoc_all["idp"].isin(IDPS)]
    missing = sorted(set(IDPS) - set(assoc["idp"]))
    if missing:
        raise SystemExit(f"the association stage did not fit {missing}: is aortic_function on?")
    model = stage_model(assoc)
    workflow = with_n(assoc)

    # the stage's analysis table, rebuilt; refitting it must give the stage's numbers
    frame = load_frame(res / "phenotypes.parquet", res / "qc.parquet", cov_path)
    refit = fit(frame, model)
    refit_diff = max(
        abs(refit[i][t]["estimate"] - workflow[i][t]["estimate"])
        for i in IDPS
        for t in ("age", "age_male", "sex")
    )

    truth = read_any(cohort / "truth" / "idps.parquet")
    truth["eid"] = truth["eid"].astype(str)
    cov = read_any(cov_path)
    fits: dict = {}
    for name, column in (("truth_labels", "{idp}"), ("analytic", "{idp}_analytic")):
        whole = truth_frame(truth, column, cov)
        fits[f"{name}_whole_cohort"] = fit(whole, model)
        # the same subjects as the stage, per IDP (its QC-passed rows with a value)
        same = whole.set_index("eid")
        used = frame.set_index("eid")
        for idp in IDPS:
            same.loc[~same.index.isin(used.index[used[idp].notna()]), idp] = np.nan
        fits[f"{name}_same_subjects"] = fit(same.reset_index(), model)

    # the generator's slope is the same in both sexes (terms age and age_male); its sex effect
    # does not change with age, so it is also the sex term at the age centre
    generator = {
        f"{v}_distensibility": {
            term: AORTA_COEFFICIENTS[f"{v}_distensibility"][term.removesuffix("_male")]
            for term in ("age", "age_male", "sex")
        }
        for v in VESSELS
    }
    coverage = {
        src: {
            idp: {t: covers(terms[idp][t]["ci95"], true[t]) for t in true}
            for idp, true in generator.items()
        }
        for src, terms in (("workflow", workflow), *fits.items())
    }

    pheno = read_table(res / "phenotypes.parquet")
    qc = read_table(res / "qc.parquet")
    qc["eid"] = qc["eid"].astype(str)
    failed = qc[~qc["qc_pass"].astype(bool)]
    masked = qc["qc_masked_idps"].fillna("").astype(str) if "qc_masked_idps" in qc else None
    aortic_masked = (
        qc.loc[masked.str.contains("AAo_|DAo_"), ["eid", "qc_masked_idps"]]
        if masked is not None
        else qc.iloc[:0]
    )
    # the aortic model that segmented the run (the phenotypes table carries the short axis's)
    ao_tables = sorted((res / "segment_ao").glob("*.parquet"))
    meta = file_metadata(ao_tables[0]) if ao_tables else {}
    result = {
        "cardiopheno": cardiopheno.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        },
        "results": str(res.resolve()),
        "cohort": str(cohort.resolve()),
        "model_sha256": meta.get("model_sha256", ""),
        "checkpoint": meta.get("checkpoint", ""),
        "stage_model": model,
        "subjects": {
            "given": len(pheno),
            "qc_pass": int(qc["qc_pass"].astype(bool).sum()),
            "qc_failed": {r.eid: str(r.qc_reasons) for r in failed.itertuples()},
            "aortic_idps_masked": {r.eid: r.qc_masked_idps for r in aortic_masked.itertuples()},
            "analysed": len(frame),
        },
        "generator": generator,
        "workflow": workflow,
        "ci95_covers_generator": coverage,
        "refit_max_abs_diff": refit_diff,
        "truth_table": fits,
        "errors_qc_passed": errors(frame, truth),
        "errors_all_measured": errors(pheno, truth),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
