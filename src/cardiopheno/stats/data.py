"""Assemble the analysis table: phenotypes + QC + covariates, QC-passed subjects only."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cardiopheno.io.covariates import sex_codes
from cardiopheno.io.records import as_dates

log = logging.getLogger(__name__)

#: Columns that are never IDPs even when they are floats: covariates, the BSA the phenotype stage
#: used for indexing, and the phenotype stage's bookkeeping (``phenotypes_seconds`` and the like).
NON_IDP_COLUMNS = frozenset(
    {"eid", "age", "sex", "height_cm", "weight_kg", "bsa_m2", "BSA", "sbp", "dbp", "heart_rate"}
)
NON_IDP_PREFIXES = ("phenotypes_", "qc_", "seg_")
#: ... and columns that describe an IDP rather than being one: the segmentation's per-subject
#: uncertainty ``LVEDV_sd`` and the like (cardiopheno.segment.uncertainty), and the atrial
#: family's count of frames left out of a curve (``LA_frames_excluded``)
NON_IDP_SUFFIXES = ("_sd", "_frames_excluded")
#: ``DataFrame.attrs`` key under which :func:`analysis_frame` lists the covariates table's columns
COVARIATE_COLUMNS_ATTR = "covariate_columns"


def mosteller_bsa(height_cm: pd.Series, weight_kg: pd.Series) -> pd.Series:
    """Body surface area (m2) by Mosteller: sqrt(height_cm * weight_kg / 3600)."""
    return np.sqrt(height_cm.astype(float) * weight_kg.astype(float) / 3600.0)


def mask_failed_idps(pheno: pd.DataFrame, qc: pd.DataFrame) -> pd.DataFrame:
    """NaN where a subject's phenotype failed its view's QC (qc column ``qc_masked_idps``)."""
    if "qc_masked_idps" not in qc.columns:
        return pheno
    masked = qc.set_index(qc["eid"].astype(str))["qc_masked_idps"].fillna("").astype(str)
    pheno = pheno.copy()
    n = 0
    for eid, names in masked[masked != ""].items():
        cols = [c for c in names.split(",") if c in pheno.columns]
        rows = pheno["eid"] == eid
        if cols and rows.any():
            pheno.loc[rows, cols] = np.nan
            n += 1
    if n:
        log.info("view QC: phenotypes of %d subjects masked", n)
    return pheno


def analysis_frame(
    phenotypes: pd.DataFrame, qc: pd.DataFrame | None, covariates: pd.DataFrame
) -> pd.DataFrame:
    """One row per QC-passed subject with IDPs and covariates (``bsa_m2`` added when absent).

    ``qc`` may be None (every subject passes). Subjects without covariates are dropped with a
    logged count; ``imaging_date`` becomes a datetime and ``sex`` 0 (female) / 1 (male) from any
    coding :func:`cardiopheno.io.covariates.sex_codes` accepts.
    """
    for name, df in (("phenotypes", phenotypes), ("covariates", covariates)):
        if "eid" not in df.columns:
            raise KeyError(f"{name} table has no 'eid' column")
    pheno = phenotypes.assign(eid=phenotypes["eid"].astype(str))
    if qc is not None:
        if "qc_pass" not in qc.columns:
            raise KeyError("qc table has no 'qc_pass' column")
        passed = set(qc.loc[qc["qc_pass"].astype(bool), "eid"].astype(str))
        n_before = len(pheno)
        pheno = pheno[pheno["eid"].isin(passed)]
        log.info("QC: %d of %d subjects pass", len(pheno), n_before)
        pheno = mask_failed_idps(pheno, qc)
    cov = covariates.assign(eid=covariates["eid"].astype(str))
    missing = {"age", "sex"} - set(cov.columns)
    if missing:
        raise KeyError(f"covariates table lacks required columns {sorted(missing)}")
    overlap = [c for c in cov.columns if c != "eid" and c in pheno.columns]
    frame = pheno.merge(cov.drop(columns=overlap), on="eid", how="inner", validate="one_to_one")
    if len(frame) < len(pheno):
        log.warning("%d QC-passed subjects have no covariates row", len(pheno) - len(frame))
    if "bsa_m2" not in frame.columns and {"height_cm", "weight_kg"} <= set(frame.columns):
        frame["bsa_m2"] = mosteller_bsa(frame["height_cm"], frame["weight_kg"])
    if "imaging_date" in frame.columns:
        frame["imaging_date"] = as_dates(frame["imaging_date"]).to_numpy()
    frame["sex"] = sex_codes(frame["sex"]).to_numpy()  # 0/1, M/F, male/female -> 0 female, 1 male
    frame["age"] = frame["age"].astype(float)
    frame = frame.reset_index(drop=True)
    # what the covariates table brought is never an IDP by default (select_idps): a float
    # covariate such as central_pp is not an imaging phenotype
    frame.attrs[COVARIATE_COLUMNS_ATTR] = [
        c for c in cov.columns if c != "eid" and c not in overlap
    ]
    return frame


def select_idps(
    frame: pd.DataFrame, requested: Sequence[str] | None, config_key: str = "idps"
) -> list[str]:
    """IDP columns to analyse: ``requested``, or every float IDP column when None (never a column
    of the covariates table, which :func:`analysis_frame` lists in ``frame.attrs``).

    A requested IDP that is not a column of the table is a configuration error (``KeyError``
    naming ``config_key``): a typo, or a phenotype family that is switched off.
    """
    if requested:
        absent = [c for c in requested if c not in frame.columns]
        if absent:
            raise KeyError(
                f"{config_key} names IDPs that are not columns of phenotypes.parquet: {absent}"
            )
        present = list(requested)
    else:
        covariates = set(frame.attrs.get(COVARIATE_COLUMNS_ATTR, ()))
        present = [
            c
            for c in frame.columns
            if c not in NON_IDP_COLUMNS
            and c not in covariates
            and not c.startswith(NON_IDP_PREFIXES)
            and not c.endswith(NON_IDP_SUFFIXES)
            and pd.api.types.is_float_dtype(frame[c])
        ]
    if not present:
        raise KeyError(f"no IDP columns to analyse ({config_key}: {requested})")
    return present


def require_columns(frame: pd.DataFrame, columns: Sequence[str], config_key: str) -> None:
    """Fail fast, naming ``config_key``, when configured covariates are not in the analysis table."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(
            f"{config_key} names columns that are in neither the covariates table nor derived "
            f"(bsa_m2): {missing}"
        )
