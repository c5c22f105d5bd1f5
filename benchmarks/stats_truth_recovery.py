"""Truth recovery of the statistics stages on the synthetic population (no imaging).

Draws a population with ``cardiopheno.synth`` (true IDPs used as the phenotypes), its diagnoses and
deaths, runs the association, PheWAS and survival stages exactly as the workflow does (through the
tables they read), redraws the figures, and checks the programmed effects
(``cardiopheno.stats.truth``). Writes results/benchmarks/stats_truth_recovery.json and
benchmarks/BENCHMARKS_stats_truth.md.

Usage: python benchmarks/stats_truth_recovery.py [--subjects 20000 --seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
from scipy.stats import binomtest

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


def run_seed(args, seed: int) -> tuple[dict, list[str]]:
    args = argparse.Namespace(**{**vars(args), "seed": seed})
    work = Path(args.work) / f"seed{seed}"
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

    # Association: the truth is stated for pathology-free subjects and has no age x sex
    # interaction, so the age and sex terms are the same at any centring: centre at 63 years
    # (the synthetic cohort's centre) for the tightest, most demanding intervals.
    normal = pop.loc[pop["pathology"] == "none", "eid"]
    frame = analysis_frame(
        pd.read_parquet(inputs[0]), None, pd.read_csv(inputs[2], dtype={"eid": str})
    )
    frame = frame[frame["eid"].isin(normal)]
    assoc_truth = fit_age_sex(
        frame, ["LVEDV", "LVEF", "LVM", "RVEDV", "RVEF"], ["bsa_m2"], age_centre=63.0
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
        "phewas_found_all": bool(pw_rec["found"].all()),
        "survival_ok": bool(sv_rec["covered"].all()),
        "association": assoc_rec.round(4).to_dict("records"),
        "phewas_effects": pw_rec.round(4).to_dict("records"),
        "survival": sv_rec.round(4).to_dict("records"),
    }
    md = [
        f"## Seed {args.seed}",
        "",
        f"`python benchmarks/stats_truth_recovery.py --subjects {args.subjects} --seeds {args.seed}`; "
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
    return result, md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=20000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--work", default="results/benchmarks/stats_truth")
    ap.add_argument("--out", default="results/benchmarks/stats_truth_recovery.json")
    ap.add_argument("--markdown", default="benchmarks/BENCHMARKS_stats_truth.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    runs, mds = [], []
    for seed in args.seeds:
        result, md = run_seed(args, seed)
        runs.append(result)
        mds.append(md)
    # 95 % CIs miss 1 in 20 true values by design: over all seeds, coverage must not be
    # significantly below 95 % (one-sided exact binomial test at 0.05).
    covered = sum(int(r["association_ci_coverage"].split("/")[0]) for r in runs)
    total = sum(int(r["association_ci_coverage"].split("/")[1]) for r in runs)
    cover_p = float(binomtest(covered, total, 0.95, alternative="less").pvalue)
    summary = {
        "subjects": args.subjects,
        "seeds": args.seeds,
        "association_ci_coverage_all_seeds": f"{covered}/{total}",
        "association_coverage_binomial_p_below_95": round(cover_p, 4),
        "phewas_programmed_found_all_seeds": all(r["phewas_found_all"] for r in runs),
        "phewas_unrelated_false_positive_rate_max": max(
            r["phewas"]["unrelated_false_positive_rate"] for r in runs
        ),
        "survival_true_hr_in_ci_all_seeds": " ".join(r["survival_true_hr_in_ci"] for r in runs),
    }
    summary["pass"] = bool(
        cover_p > 0.05
        and summary["phewas_programmed_found_all_seeds"]
        and summary["phewas_unrelated_false_positive_rate_max"] <= 0.05
        and all(r["survival_ok"] for r in runs)
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "runs": runs}, indent=2, default=str))
    head = [
        f"# Statistics truth recovery (synthetic population, n = {args.subjects}, seeds {args.seeds})",
        "",
        f"`python benchmarks/stats_truth_recovery.py --subjects {args.subjects} --seeds "
        f"{' '.join(map(str, args.seeds))}`",
        "",
        f"- Age/sex 95 % CIs covering the true coefficient, all seeds: {covered}/{total} "
        f"(exact binomial test of coverage below 95 %: p = {cover_p:.3f}).",
        f"- PheWAS programmed effects found at BH q < 0.05 in every seed: "
        f"{summary['phewas_programmed_found_all_seeds']}; largest share of unrelated phecode tests "
        f"significant: {summary['phewas_unrelated_false_positive_rate_max']:.4f}.",
        f"- True HR inside the Cox 95 % CI per seed: {summary['survival_true_hr_in_ci_all_seeds']}.",
        f"- Overall: {'PASS' if summary['pass'] else 'FAIL'}.",
        "",
    ]
    body = [line for md in mds for line in [*md, ""]]
    Path(args.markdown).write_text("\n".join(head + body))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
