"""Age and sex associations of each IDP (OLS with robust errors) and sex-specific reference ranges.

Model per IDP, fitted with statsmodels formulas::

    IDP ~ age * sex + covariate_1 + ...

with age centred at ``age_centre`` years, so that ``sex`` is the male-minus-female difference at
that age and ``age`` the slope in women; ``age_male`` (age + age:sex, a linear contrast) is the
slope in men. Standard errors are heteroscedasticity-robust (``cov_type``, default HC3).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats as sps

from cardiopheno.io.tables import ColumnSpec
from cardiopheno.stats.multiple_testing import CORRECTION_COLUMNS, add_corrections
from cardiopheno.stats.schema import NotEstimable, conform

log = logging.getLogger(__name__)

ASSOCIATION_COLUMNS: dict[str, ColumnSpec] = {
    "estimate": ColumnSpec("IDP unit per term unit", "OLS coefficient (age terms per year)"),
    "se": ColumnSpec("IDP unit per term unit", "robust standard error of the coefficient"),
    "ci_low": ColumnSpec("IDP unit per term unit", "lower bound of the 95% confidence interval"),
    "ci_high": ColumnSpec("IDP unit per term unit", "upper bound of the 95% confidence interval"),
    "statistic": ColumnSpec("", "Wald z statistic (estimate / robust SE)"),
    "p": ColumnSpec("", "two-sided p value of the Wald test with robust SE"),
    "q_bh": ColumnSpec("", CORRECTION_COLUMNS["q_bh"] + " (intercepts excluded)"),
    "p_bonferroni": ColumnSpec("", CORRECTION_COLUMNS["p_bonferroni"] + " (intercepts excluded)"),
    "estimate_std": ColumnSpec("SD of IDP per std_scale", "standardised effect, see std_scale"),
    "ci_low_std": ColumnSpec("SD of IDP per std_scale", "lower 95% bound of estimate_std"),
    "ci_high_std": ColumnSpec("SD of IDP per std_scale", "upper 95% bound of estimate_std"),
    "idp_sd": ColumnSpec("IDP unit", "standard deviation of the IDP in the analysed sample"),
    "r2": ColumnSpec("", "coefficient of determination of the model"),
    "age_centre": ColumnSpec("years", "age at which the sex and intercept terms are evaluated"),
}

#: Columns and dtypes of the associations table (also when it has no rows).
ASSOCIATION_DTYPES: dict[str, str] = {
    "idp": "object", "term": "object", "estimate": "float64", "se": "float64",
    "ci_low": "float64", "ci_high": "float64", "statistic": "float64", "p": "float64",
    "estimate_std": "float64", "ci_low_std": "float64", "ci_high_std": "float64",
    "std_scale": "object", "idp_sd": "float64", "n": "int64", "r2": "float64",
    "cov_type": "object", "age_centre": "float64", "formula": "object", "q_bh": "float64",
    "p_bonferroni": "float64",
}  # fmt: skip

REFERENCE_COLUMNS: dict[str, ColumnSpec] = {
    "age_low": ColumnSpec("years", "lower edge of the age band (inclusive)"),
    "age_high": ColumnSpec("years", "upper edge of the age band (exclusive)"),
    "mean": ColumnSpec("IDP unit", "mean of the IDP in the band"),
    "sd": ColumnSpec("IDP unit", "standard deviation (ddof=1) of the IDP in the band"),
    "p2_5": ColumnSpec("IDP unit", "2.5th centile (linear interpolation)"),
    "p97_5": ColumnSpec("IDP unit", "97.5th centile (linear interpolation)"),
}


def _std_factor(term: str, frame: pd.DataFrame, idp_sd: float) -> tuple[float, str]:
    """Multiplier turning a raw coefficient into a standardised effect, and its description."""
    if term in ("age", "age:sex", "age_male"):
        return 10.0 / idp_sd, "SD of IDP per decade of age"
    if term == "sex":
        return 1.0 / idp_sd, "SD of IDP, male minus female"
    if term == "Intercept":
        return np.nan, ""
    col = frame[term]
    if set(pd.unique(col.dropna())) <= {0, 1}:
        return 1.0 / idp_sd, f"SD of IDP, {term} 1 vs 0"
    return float(col.std()) / idp_sd, f"SD of IDP per SD of {term}"


def fit_age_sex(
    frame: pd.DataFrame,
    idps: Sequence[str],
    covariates: Sequence[str] = ("bsa_m2",),
    cov_type: str = "HC3",
    age_centre: float = 60.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Fit ``IDP ~ age * sex + covariates`` per IDP; one tidy row per IDP and term.

    Rows with a missing IDP or covariate are dropped per model (``n`` says how many were used).
    ``q_bh`` and ``p_bonferroni`` correct over every non-intercept row of the returned table.
    An IDP with fewer than ``len(covariates) + 6`` complete rows, one value only in them, or whose
    design matrix is rank-deficient (say, subjects of one sex only), is skipped with a warning;
    when every IDP is,
    :class:`~cardiopheno.stats.schema.NotEstimable` says why.
    """
    covariates = list(covariates)
    missing = [c for c in ["age", "sex", *covariates] if c not in frame.columns]
    if missing:
        raise KeyError(f"association covariates missing from the analysis table: {missing}")
    zcrit = sps.norm.ppf(1 - alpha / 2)
    min_rows = len(covariates) + 6  # 4 + k coefficients and at least 2 residual df
    rows = []
    most_rows, rank_deficient, too_few, constant = 0, [], [], []
    for idp in idps:
        data = frame[[idp, "age", "sex", *covariates]].dropna().astype(float)
        data["age"] = data["age"] - age_centre
        most_rows = max(most_rows, len(data))
        if len(data) < min_rows:
            too_few.append(f"{idp} ({len(data)})")
            continue
        if data[idp].nunique() < 2:
            # nothing to explain: every standard error would be 0 (a count that is 0 for every
            # subject of a clean cohort, say)
            constant.append(f"{idp} (= {data[idp].iloc[0]:g})")
            continue
        fitted = _fit_ols(idp, data, covariates, cov_type)
        if fitted is None:
            rank_deficient.append(idp)
            continue
        rows += _term_rows(idp, data, *fitted, cov_type, age_centre, zcrit)
    _warn_skipped(too_few, constant, min_rows)
    out = pd.DataFrame(rows)
    if out.empty:
        terms = ", ".join([*("age", "sex"), *covariates])
        reason = (
            f"no IDP has at least {min_rows} complete rows (IDP, {terms}); "
            f"the most complete has {most_rows}"
        )
        if rank_deficient:
            reason += f"; rank-deficient design (one sex only?) for {len(rank_deficient)} IDPs"
        if constant:
            reason += f"; {len(constant)} IDPs take one value only"
        raise NotEstimable(reason)
    return conform(add_corrections(out, mask=out["term"] != "intercept"), ASSOCIATION_DTYPES)


def _fit_ols(idp: str, data: pd.DataFrame, covariates: list[str], cov_type: str):
    """(formula, fitted OLS results with ``cov_type`` errors) of ``IDP ~ age * sex +
    covariates``; None (with a warning) when the design is rank-deficient."""
    formula = f"{idp} ~ age * sex" + "".join(f" + {c}" for c in covariates)
    model = smf.ols(formula, data=data)
    if np.linalg.matrix_rank(model.exog) < model.exog.shape[1]:
        # statsmodels would return pseudo-inverse estimates of unidentified terms.
        log.warning(
            "%s: design of %s is rank-deficient (sexes: %s), association skipped",
            idp, formula, sorted(pd.unique(data["sex"])),
        )  # fmt: skip
        return None
    return formula, model.fit(cov_type=cov_type)


def _term_rows(idp, data, formula, res, cov_type, age_centre, zcrit) -> list[dict]:
    """One tidy row per term of a fitted model, plus ``age_male`` (age + age:sex)."""
    idp_sd = float(data[idp].std())
    estimates = res.params.to_dict()
    ses = res.bse.to_dict()
    # Slope in men: a linear contrast with the robust covariance (statsmodels t_test).
    contrast = res.t_test("age + age:sex = 0")
    estimates["age_male"] = float(np.squeeze(contrast.effect))
    ses["age_male"] = float(np.squeeze(contrast.sd))
    rows = []
    for term, est in estimates.items():
        se = ses[term]
        z = est / se
        factor, scale = _std_factor(term, data, idp_sd)
        rows.append(
            {
                "idp": idp,
                "term": term.lower() if term == "Intercept" else term,
                "estimate": est,
                "se": se,
                "ci_low": est - zcrit * se,
                "ci_high": est + zcrit * se,
                "statistic": z,
                "p": float(2 * sps.norm.sf(abs(z))),
                "estimate_std": est * factor,
                "ci_low_std": (est - zcrit * se) * factor,
                "ci_high_std": (est + zcrit * se) * factor,
                "std_scale": scale,
                "idp_sd": idp_sd,
                "n": int(res.nobs),
                "r2": float(res.rsquared),
                "cov_type": cov_type,
                "age_centre": float(age_centre),
                "formula": formula,
            }
        )
    return rows


def _warn_skipped(too_few: list[str], constant: list[str], min_rows: int) -> None:
    if too_few:
        log.warning(
            "association skipped for %d IDPs with fewer than %d complete rows: %s",
            len(too_few), min_rows, ", ".join(too_few),
        )  # fmt: skip
    if constant:
        log.warning(
            "association skipped for %d IDPs with the same value in every complete row: %s",
            len(constant), ", ".join(constant),
        )  # fmt: skip


def reference_ranges(
    frame: pd.DataFrame,
    idps: Sequence[str],
    age_edges: Sequence[float] = (40, 50, 60, 70, 80),
    min_n: int = 20,
) -> pd.DataFrame:
    """Sex-specific reference ranges by age band: n, mean, SD, 2.5th and 97.5th centiles.

    Bands are ``[edge_i, edge_i+1)``; subjects outside the edges are not counted. Bands with fewer
    than ``min_n`` subjects report ``n`` but missing statistics (a centile from a handful of
    people is not a reference range).
    """
    edges = list(age_edges)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"age band edges must be increasing, got {edges}")
    rows = []
    sex_names = {0.0: "female", 1.0: "male"}
    for idp in idps:
        for sex_value, sex_name in sex_names.items():
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                sel = (frame["sex"] == sex_value) & (frame["age"] >= lo) & (frame["age"] < hi)
                values = frame.loc[sel, idp].dropna().to_numpy(dtype=float)
                enough = len(values) >= max(min_n, 2)
                rows.append(
                    {
                        "idp": idp,
                        "sex": sex_name,
                        "age_band": f"{lo:g}-{hi:g}",
                        "age_low": float(lo),
                        "age_high": float(hi),
                        "n": len(values),
                        "mean": float(values.mean()) if enough else np.nan,
                        "sd": float(values.std(ddof=1)) if enough else np.nan,
                        "p2_5": float(np.percentile(values, 2.5)) if enough else np.nan,
                        "p97_5": float(np.percentile(values, 97.5)) if enough else np.nan,
                    }
                )
    return pd.DataFrame(rows)
