"""Truth recovery of the statistics stages on the synthetic population (no imaging).

Draws a population with ``cardiopheno.synth`` (true IDPs used as the phenotypes), its diagnoses and
deaths, runs the association, PheWAS and survival stages exactly as the workflow does (through the
tables they read), redraws the figures, and checks the programmed effects
(``cardiopheno.stats.truth``). Writes results/benchmarks/stats_truth_recovery.json and
benchmarks/BENCHMARKS_stats_truth.md.

Usage: python benchmarks/stats_truth_recovery.py [--subjects 20000 --seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from cardiopheno.plots.figures import association_figures, phewas_figures, survival_figures
from cardiopheno.stats.association import fit_age_sex
from cardiopheno.stats.data import analysis_frame
from cardiopheno.stats.phecodes import load_phecode_map
from cardiopheno.stats.pipeline import association_stage, phewas_stage, survival_stage
from cardiopheno.stats.truth import association_recovery, phewas_recovery, survival_recovery
from cardiopheno.synth.outcomes import END_OF_FOLLOW_UP, sample_outcomes
from cardiopheno.synth.population import sample_population

TRUE_IDPS = ["LVEDV", "LVESV", "LVSV", "LVEF", "LVM", "RVEDV", "RVESV", "RVSV", "RVEF"]
OUTCOMES = {
    "heart_failure": {"icd10": ["I50"], "sources": ["diagnoses", "deaths"]},
    "cv_death": {"icd10": ["I"], "sources": ["deaths"]},
    "all_cause_death": {"icd10": ["*"], "sources": ["deaths"]},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="results/benchmarks/stats_truth")
    ap.add_argument("--out", default="results/benchmarks/stats_truth_recovery.json")
    ap.add_argument("--markdown", default="benchmarks/BENCHMARKS_stats_truth.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    (work / "figures").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pop = sample_population(args.subjects, args.seed)
    pop["eid"] = pop["eid"].astype(str)
    out = sample_outcomes(pop, args.seed)
    cov_cols = [
        "eid",
        "age",
        "sex",
        "height_cm",
        "weight_kg",
        "sbp",
        "dbp",
        "heart_rate",
        "imaging_date",
    ]
    pop[cov_cols].to_csv(work / "covariates.csv", index=False)
    pop[["eid", *TRUE_IDPS]].to_parquet(work / "phenotypes.parquet")
    pd.DataFrame({"eid": pop["eid"], "qc_pass": True, "qc_reasons": ""}).to_parquet(
        work / "qc.parquet"
    )
    out.diagnoses.to_csv(work / "diagnoses.csv", index=False)
    out.deaths.to_csv(work / "deaths.csv", index=False)
    inputs = [work / "phenotypes.parquet", work / "qc.parquet", work / "covariates.csv"]

    # Association: the truth is stated for pathology-free subjects without centring age.
    normal = pop.loc[pop["pathology"] == "none", "eid"]
    frame = analysis_frame(
        pd.read_parquet(inputs[0]), None, pd.read_csv(inputs[2], dtype={"eid": str})
    )
    frame = frame[frame["eid"].isin(normal)]
    assoc_truth = fit_age_sex(
        frame, ["LVEDV", "LVEF", "LVM", "RVEDV", "RVEF"], ["bsa_m2"], age_centre=0.0
    )
    assoc_rec = association_recovery(assoc_truth, out.effects)
    # The stages as the workflow runs them (all subjects).
    association_stage(*inputs, work / "associations.parquet", work / "reference_ranges.parquet", {})
    t1 = time.perf_counter()
    phewas_stage(*inputs, work / "diagnoses.csv", work / "phewas.parquet", work / "top_hits.parquet",
                 {"min_cases": 20, "firth_below_cases": 50})  # fmt: skip
    t_phewas = time.perf_counter() - t1
    survival_stage(*inputs, work / "diagnoses.csv", work / "deaths.csv", work / "cox.parquet",
                   work / "outcomes.parquet",
                   {"outcomes": OUTCOMES, "end_of_followup": str(END_OF_FOLLOW_UP)})  # fmt: skip
    phewas = pd.read_parquet(work / "phewas.parquet")
    pw_rec, pw_summary = phewas_recovery(
        phewas, out.effects, load_phecode_map(), extra_codes=["I50"]
    )
    sv_rec = survival_recovery(pd.read_parquet(work / "cox.parquet"), out.effects)
    fig = work / "figures"
    association_figures(*inputs, work / "associations.parquet", work / "reference_ranges.parquet",
                        [fig / "LVEF_by_age.png", fig / "effects_heatmap.png"], {})  # fmt: skip
    phewas_figures(work / "phewas.parquet", [fig / "manhattan.png"], {})
    survival_figures(*inputs, work / "cox.parquet", work / "outcomes.parquet",
                     [fig / "km_heart_failure__LVEF.png", fig / "cox_forest.png"], {})  # fmt: skip
    result = {
        "subjects": args.subjects,
        "seed": args.seed,
        "seconds_total": round(time.perf_counter() - t0, 1),
        "seconds_phewas": round(t_phewas, 1),
        "association_ci_coverage": f"{int(assoc_rec['covered'].sum())}/{len(assoc_rec)}",
        "phewas_programmed_found_q05": f"{int(pw_rec['found'].sum())}/{len(pw_rec)}",
        "phewas_true_log_or_in_ci": f"{int(pw_rec['covered'].sum())}/{len(pw_rec)}",
        "phewas": pw_summary,
        "survival_true_hr_in_ci": f"{int(sv_rec['covered'].sum())}/{len(sv_rec)}",
        "pass": bool(
            assoc_rec["covered"].all()
            and pw_rec["found"].all()
            and pw_summary["unrelated_false_positive_rate"] <= 0.05
            and sv_rec["covered"].all()
        ),
        "association": assoc_rec.round(4).to_dict("records"),
        "phewas_effects": pw_rec.round(4).to_dict("records"),
        "survival": sv_rec.round(4).to_dict("records"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    md = [
        f"## Statistics truth recovery (synthetic population, n = {args.subjects}, seed {args.seed})",
        "",
        f"`python benchmarks/stats_truth_recovery.py --subjects {args.subjects} --seed {args.seed}`; "
        f"total {result['seconds_total']} s (PheWAS {result['seconds_phewas']} s).",
        "",
        f"- Age/sex coefficients: true value inside the 95 % CI for {result['association_ci_coverage']}.",
        f"- PheWAS: programmed effects found at BH q < 0.05: {result['phewas_programmed_found_q05']}; "
        f"true log-OR inside the 95 % CI: {result['phewas_true_log_or_in_ci']}; "
        f"unrelated phecodes significant in {pw_summary['significant_unrelated']} of "
        f"{pw_summary['unrelated_tests']} tests ({pw_summary['unrelated_false_positive_rate']:.4f}); "
        f"false-discovery proportion among all {pw_summary['significant']} significant tests "
        f"{pw_summary['false_discovery_proportion']:.3f}.",
        f"- Cox: true HR inside the 95 % CI for {result['survival_true_hr_in_ci']}.",
        f"- Overall: {'PASS' if result['pass'] else 'FAIL'}.",
        "",
        "| effect | true | estimate (95 % CI) | covered |",
        "| --- | --- | --- | --- |",
    ]
    for r in assoc_rec.itertuples():
        md.append(
            f"| {r.idp} ~ {r.term} | {r.estimate_true:.3g} | {r.estimate:.3g} ({r.ci_low:.3g}, {r.ci_high:.3g}) | {r.covered} |"
        )
    for r in pw_rec.itertuples():
        md.append(
            f"| {r.idp} -> {r.icd10} (phecode {r.phecode}, q {r.q_bh:.2g}) log-OR/SD | {r.estimate_true:.3g} | {r.estimate:.3g} ({r.ci_low:.3g}, {r.ci_high:.3g}) | {r.covered} |"
        )
    for r in sv_rec.itertuples():
        md.append(
            f"| {r.idp} -> {r.outcome} log-HR/SD ({r.n_events} events) | {r.estimate_true:.3g} | {r.estimate:.3g} ({r.ci_low:.3g}, {r.ci_high:.3g}) | {r.covered} |"
        )
    Path(args.markdown).write_text("\n".join(md) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))


if __name__ == "__main__":
    main()
