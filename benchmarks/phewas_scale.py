"""PheWAS engine at UK Biobank scale: 26,893 subjects x 82 IDPs x 1,500 phecodes.

Times ``cardiopheno.stats.logistic.fit_pairs`` on the full problem, and in the same run a
``statsmodels`` Logit loop on a random subsample of the same (IDP, phecode) pairs; reports the
speed ratio and the agreement of beta, SE and p between the two on that subsample.

Data: IDPs are standard-normal z-scores with a shared correlation, covariates age (45-80) and sex;
phecode prevalences log-uniform between 0.1 % and 20 %; 5 % of phecodes carry a true IDP effect;
each phecode excludes a random 0-5 % of its controls (exclusion ranges), and 5 % of phecodes are
restricted to one sex (the other sex is invalid, and sex is then constant: those are fitted
without the sex column, as the PheWAS does).

Usage: python benchmarks/phewas_scale.py [--subjects 26893 --idps 82 --phecodes 1500 --threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from cardiopheno.stats.logistic import fit_pairs


def make_data(n: int, k: int, p: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, 1))
    z = 0.5 * shared + np.sqrt(0.75) * rng.normal(size=(n, k))
    age = rng.uniform(45, 80, n)
    sex = rng.integers(0, 2, n).astype(float)
    covs = np.column_stack([np.ones(n), (age - 62.5) / 10, sex])
    prevalence = np.exp(rng.uniform(np.log(0.001), np.log(0.2), p))
    effect = np.where(rng.random(p) < 0.05, rng.normal(0, 0.3, p), 0.0)
    which = rng.integers(0, k, p)
    eta = np.log(prevalence / (1 - prevalence)) + 0.3 * covs[:, [1]] + 0.2 * covs[:, [2]]
    eta = eta + z[:, which] * effect
    cases = rng.random((n, p)) < 1 / (1 + np.exp(-eta))
    excluded = (rng.random((n, p)) < rng.uniform(0, 0.05, p)) & ~cases
    valid = ~excluded
    sex_only = rng.random(p) < 0.05
    keep_sex = rng.integers(0, 2, p)
    valid[:, sex_only] &= sex[:, None] == keep_sex[sex_only]
    cases &= valid
    return z, covs, cases, valid, sex_only


def engine(z, covs, cases, valid, sex_only, threads, chunk, firth_cases, firth_p):
    both = ~sex_only
    res_both = fit_pairs(
        z,
        covs,
        cases[:, both],
        valid[:, both],
        firth_cases=firth_cases,
        firth_p=firth_p,
        chunk=chunk,
        threads=threads,
    )
    res_sex = fit_pairs(
        z,
        covs[:, :2],
        cases[:, sex_only],
        valid[:, sex_only],
        firth_cases=firth_cases,
        firth_p=firth_p,
        chunk=chunk,
        threads=threads,
    )
    return res_both, res_sex, both


def statsmodels_loop(z, covs, cases, valid, sex_only, pairs):
    import statsmodels.api as sm

    out = []
    t0 = time.perf_counter()
    for k, j in pairs:
        rows = valid[:, j]
        c = covs[:, :2] if sex_only[j] else covs
        x = np.column_stack([z[rows, k], c[rows]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.Logit(cases[rows, j].astype(float), x).fit(disp=0, maxiter=100)
        out.append((fit.params[0], fit.bse[0], fit.pvalues[0], bool(fit.mle_retvals["converged"])))
    return np.array(out, dtype=float), (time.perf_counter() - t0) / len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=26893)
    ap.add_argument("--idps", type=int, default=82)
    ap.add_argument("--phecodes", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--firth-cases", type=int, default=50)
    ap.add_argument("--firth-p", type=float, default=0.05)
    ap.add_argument("--sm-pairs", type=int, default=200)
    ap.add_argument("--out", default="results/benchmarks/phewas_scale.json")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    z, covs, cases, valid, sex_only = make_data(args.subjects, args.idps, args.phecodes)
    t0 = time.perf_counter()
    res_both, res_sex, both = engine(
        z, covs, cases, valid, sex_only, args.threads, args.chunk, args.firth_cases, args.firth_p
    )
    engine_s = time.perf_counter() - t0
    beta = np.empty((args.idps, args.phecodes))
    se, pv = np.empty_like(beta), np.empty_like(beta)
    method, conv = np.empty(beta.shape, np.int8), np.empty(beta.shape, bool)
    for res, cols in ((res_both, both), (res_sex, ~both)):
        beta[:, cols], se[:, cols], pv[:, cols] = res.beta, res.se, res.p
        method[:, cols], conv[:, cols] = res.method, res.converged

    rng = np.random.default_rng(1)
    ml_pairs = np.argwhere(method == 1)
    pick = ml_pairs[
        rng.choice(len(ml_pairs), size=min(args.sm_pairs, len(ml_pairs)), replace=False)
    ]
    ref, sm_per_fit = statsmodels_loop(z, covs, cases, valid, sex_only, pick)
    ours = np.column_stack([beta[tuple(pick.T)], se[tuple(pick.T)], pv[tuple(pick.T)]])
    rel = np.abs(ours / ref[:, :3] - 1)
    n_pairs = args.idps * args.phecodes
    sm_total = sm_per_fit * n_pairs
    prevalence = cases.sum(0) / valid.sum(0)
    result = {
        "subjects": args.subjects,
        "idps": args.idps,
        "phecodes": args.phecodes,
        "pairs": n_pairs,
        "prevalence_range": [float(prevalence.min()), float(prevalence.max())],
        "threads": args.threads,
        "chunk": args.chunk,
        "firth_cases": args.firth_cases,
        "firth_p": args.firth_p,
        "engine_seconds": round(engine_s, 2),
        "engine_us_per_pair": round(engine_s / n_pairs * 1e6, 1),
        "statsmodels_pairs_timed": len(pick),
        "statsmodels_ms_per_fit": round(sm_per_fit * 1e3, 2),
        "statsmodels_full_scale_seconds_extrapolated": round(sm_total, 1),
        "speedup_vs_statsmodels": round(sm_total / engine_s, 1),
        "max_rel_diff_beta": float(rel[:, 0].max()),
        "max_rel_diff_se": float(rel[:, 1].max()),
        "max_rel_diff_p": float(rel[:, 2].max()),
        "fraction_firth": float((method == 2).mean()),
        "fraction_converged": float(conv.mean()),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "machine": {
            "platform": platform.platform(),
            "processor": _cpu_model(),
            "cpus_allowed": len(os.sched_getaffinity(0)),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
