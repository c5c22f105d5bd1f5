"""Shared by benchmarks/uncertainty.py and benchmarks/subgroup_audit.py: one row per subject of a
synthetic cohort, segmented as the workflow does (the shipped model, config defaults: TTA on,
flip_ensemble 1), with

- Dice per class over every frame against the truth labels (MONAI, as segment_accuracy.py),
- the key phenotypes from the predicted labels (the phenotype families) and from the truth
  (``truth/idps.parquet``), their signed errors ``err_<IDP>`` and uncertainties ``<IDP>_sd``,
- per-subject QC as the workflow runs it (``cardiopheno.qc.batch.subject_checks`` with the demo
  config's thresholds) plus the cohort outlier check: ``qc_pass``, ``qc_reasons``,
- age and sex from ``covariates.csv``.

The table is cached in ``results/benchmarks/cache/`` (keyed by cohort folder and model sha256)
so the two benchmarks segment a cohort once.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from segment_accuracy import dice_per_class  # noqa: E402

from cardiopheno.io.nifti import load_cine, save_labels_like  # noqa: E402
from cardiopheno.io.tables import read_any  # noqa: E402
from cardiopheno.phenotypes.registry import (  # noqa: E402
    compute_phenotypes,
    context_from_files,
    resolve_families,
)
from cardiopheno.qc.batch import subject_checks, summarise  # noqa: E402
from cardiopheno.qc.checks import QCThresholds  # noqa: E402
from cardiopheno.qc.phenotype import robust_outliers  # noqa: E402
from cardiopheno.segment.infer import Segmenter  # noqa: E402
from cardiopheno.segment.uncertainty import UNCERTAINTY_COLUMNS  # noqa: E402

PHENOTYPES = ("LVEDV", "LVESV", "LVEF", "LVM", "RVEDV", "RVESV", "RVEF")


def thresholds() -> QCThresholds:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    return QCThresholds.from_config(config.get("qc"))


def evaluate_cohort(cohort: Path, seg: Segmenter, cache_dir: Path | None = None) -> pd.DataFrame:
    cache = None
    if cache_dir is not None:
        cache = cache_dir / f"synthetic_{cohort.resolve().name}_{seg.sha256[:12]}.parquet"
        if cache.is_file():
            print(f"reusing {cache}")
            return pd.read_parquet(cache)
    manifest = read_any(cohort / "manifest.csv")
    truth = read_any(cohort / "truth" / "idps.parquet").set_index("eid")
    truth.index = truth.index.astype(str)
    cov = read_any(cohort / "covariates.csv")
    cov["eid"] = cov["eid"].astype(str)
    cov = cov.set_index("eid")
    th = thresholds()
    families = resolve_families(["lv_function", "rv_function"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rec in manifest.itertuples(index=False):
            eid = str(rec.eid)
            t0 = time.perf_counter()
            image_path = cohort / rec.sa
            cine = load_cine(image_path)
            out = seg.segment_array(cine.data, cine.spacing)
            labels = load_cine(cohort / "truth" / "labels" / f"{eid}.nii.gz").data.astype(np.uint8)
            seg_path = Path(tmp) / f"{eid}.nii.gz"
            save_labels_like(seg_path, out.labels, image_path)
            covs = cov.loc[eid].to_dict() if eid in cov.index else {}
            ctx = context_from_files(seg_path, None, covs, eid=eid)
            pheno = compute_phenotypes(ctx, families)
            seg_row = {**{f"tta_dice_{k}": v for k, v in out.tta.items()}, **out.uncertainty}
            results, _, _ = subject_checks(
                eid, str(image_path), str(seg_path), True, "", seg_row,
                {**pheno, "phenotypes_ok": True}, th,
            )  # fmt: skip
            row = {"eid": eid, "sex": covs.get("sex"), "age": covs.get("age")}
            row["pathology"] = truth.loc[eid, "pathology"] if "pathology" in truth else ""
            row.update({f"dice_{k}": v for k, v in dice_per_class(out.labels, labels).items()})
            row.update({f"tta_dice_{k}": v for k, v in out.tta.items()})
            for p in PHENOTYPES:
                row[p] = pheno[p]
                row[f"true_{p}"] = float(truth.loc[eid, p])
                row[f"err_{p}"] = pheno[p] - float(truth.loc[eid, p])
            row.update({c: out.uncertainty.get(c, np.nan) for c in UNCERTAINTY_COLUMNS})
            row.update(summarise(results))
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            print(f"{eid}: dice {row['dice_lv']:.3f}/{row['dice_myo']:.3f}/{row['dice_rv']:.3f} "
                  f"qc {row['qc_pass']} {row['seconds']:.1f} s", flush=True)  # fmt: skip
    df = pd.DataFrame(rows)
    # the cohort outlier check of the QC merge (median/MAD over the per-subject passes)
    passed, reasons = robust_outliers(df, df["qc_pass"], th)
    df["per_subject_qc_pass"] = df["qc_pass"]
    df["qc_pass"] = df["qc_pass"] & passed
    df.loc[~passed, "qc_reasons"] = df.loc[~passed, "qc_reasons"] + "; pheno_outlier: " + reasons
    keep = ["eid", "sex", "age", "pathology", "qc_pass", "per_subject_qc_pass", "qc_reasons"]
    keep += [c for c in df.columns if c.startswith(("dice_", "tta_dice_", "true_", "err_"))]
    keep += [*PHENOTYPES, *UNCERTAINTY_COLUMNS, "seconds"]
    df = df[keep]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(cache)
    return df
