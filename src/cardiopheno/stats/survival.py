"""Cox proportional-hazards models of incident outcomes on each IDP (lifelines CoxPHFitter).

Per outcome and IDP: ``h(t) = h0(t) exp(b * IDP_z + covariates)``, IDP z-scored over the subjects
at risk, so ``hazard_ratio`` is per SD. Reported with the Schoenfeld-residual proportional-hazards
test of the IDP term (lifelines ``proportional_hazard_test``, rank-transformed time) and Harrell's
concordance. BH-FDR and Bonferroni over all IDP x outcome rows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import pandas as pd
from lifelines import CoxPHFitter
from lifelines.statistics import proportional_hazard_test

from cardiopheno.io.tables import ColumnSpec
from cardiopheno.stats.multiple_testing import CORRECTION_COLUMNS, add_corrections
from cardiopheno.stats.schema import NotEstimable, conform

log = logging.getLogger(__name__)

COX_COLUMNS: dict[str, ColumnSpec] = {
    "estimate": ColumnSpec("log-hazard per SD", "Cox coefficient of the z-scored IDP"),
    "se": ColumnSpec("log-hazard per SD", "standard error of the coefficient"),
    "ci_low": ColumnSpec("log-hazard per SD", "lower bound of the 95% confidence interval"),
    "ci_high": ColumnSpec("log-hazard per SD", "upper bound of the 95% confidence interval"),
    "hazard_ratio": ColumnSpec("per SD", "hazard ratio per SD of the IDP"),
    "hr_ci_low": ColumnSpec("per SD", "lower bound of the 95% CI of the hazard ratio"),
    "hr_ci_high": ColumnSpec("per SD", "upper bound of the 95% CI of the hazard ratio"),
    "p": ColumnSpec("", "two-sided Wald p value"),
    "q_bh": ColumnSpec("", CORRECTION_COLUMNS["q_bh"]),
    "p_bonferroni": ColumnSpec("", CORRECTION_COLUMNS["p_bonferroni"]),
    "ph_p": ColumnSpec("", "proportional-hazards test p value of the IDP term (rank time)"),
    "ph_min_p": ColumnSpec("", "smallest proportional-hazards test p value over all terms"),
    "concordance": ColumnSpec("", "Harrell's concordance index of the model"),
    "idp_sd": ColumnSpec("IDP unit", "SD used to z-score the IDP"),
    "follow_up_years": ColumnSpec("years", "median follow-up time of the analysed subjects"),
}

#: Columns and dtypes of the Cox table (also when it has no rows).
COX_DTYPES: dict[str, str] = {
    "idp": "object", "term": "object", "outcome": "object", "n": "int64", "n_events": "int64",
    "converged": "bool", "note": "object", "estimate": "float64", "se": "float64",
    "ci_low": "float64", "ci_high": "float64", "hazard_ratio": "float64",
    "hr_ci_low": "float64", "hr_ci_high": "float64", "p": "float64", "q_bh": "float64",
    "p_bonferroni": "float64", "ph_p": "float64", "ph_min_p": "float64",
    "concordance": "float64", "idp_sd": "float64", "follow_up_years": "float64",
    "covariates": "object",
}  # fmt: skip


def fit_cox(
    frame: pd.DataFrame,
    outcomes: pd.DataFrame,
    idps: Sequence[str],
    covariates: Sequence[str] = ("age", "sex"),
    min_events: int = 10,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Fit one Cox model per (outcome, IDP); one tidy row each, for the IDP term.

    ``frame``: one row per analysed subject (``eid``, IDPs, covariates). ``outcomes``: from
    :func:`cardiopheno.stats.outcomes.derive_outcomes`; only "event"/"censored" rows are used.
    Every outcome of ``outcomes`` gets a row per IDP, also one without subjects at risk (not
    fitted, with a ``note``); an ``outcomes`` table without rows raises
    :class:`~cardiopheno.stats.schema.NotEstimable`.
    """
    covariates = list(covariates)
    missing = [c for c in covariates if c not in frame.columns]
    if missing:
        raise KeyError(f"survival covariates missing from the analysis table: {missing}")
    if outcomes.empty:
        raise NotEstimable("no subjects to follow up for any outcome")
    usable = outcomes["status"].isin(["event", "censored"]) & (outcomes["time_years"] > 0)
    rows = []
    for name in pd.unique(outcomes["outcome"]):
        od = outcomes[usable & (outcomes["outcome"] == name)]
        data = od[["eid", "time_years", "event"]].merge(frame, on="eid", how="inner")
        for idp in idps:
            d = data[["time_years", "event", idp, *covariates]].dropna()
            n_events = int(d["event"].sum())
            base = {"idp": idp, "term": "idp_z", "outcome": name, "n": len(d), "n_events": n_events}
            if n_events < min_events:
                log.info("%s ~ %s: %d events < %d, not fitted", name, idp, n_events, min_events)
                rows.append({**base, "converged": False, "note": f"fewer than {min_events} events"})
                continue
            sd = float(d[idp].std())
            if not sd > 0:  # one value among those followed up: no hazard ratio per SD
                log.warning("%s ~ %s: the IDP takes one value, not fitted", name, idp)
                rows.append({**base, "converged": False, "note": "IDP takes one value"})
                continue
            d = d.assign(**{idp: (d[idp] - d[idp].mean()) / sd, "event": d["event"].astype(int)})
            cph = CoxPHFitter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cph.fit(d, duration_col="time_years", event_col="event")
                    ph = proportional_hazard_test(cph, d, time_transform="rank")
            except Exception as exc:  # lifelines raises ConvergenceError and LinAlg errors
                log.warning("%s ~ %s: Cox fit failed: %s", name, idp, exc)
                rows.append({**base, "converged": False, "note": f"fit failed: {exc}"})
                continue
            s = cph.summary.loc[idp]
            ph_p = ph.summary["p"]
            rows.append(
                {
                    **base,
                    "estimate": float(s["coef"]),
                    "se": float(s["se(coef)"]),
                    "ci_low": float(s["coef lower 95%"]),
                    "ci_high": float(s["coef upper 95%"]),
                    "hazard_ratio": float(s["exp(coef)"]),
                    "hr_ci_low": float(s["exp(coef) lower 95%"]),
                    "hr_ci_high": float(s["exp(coef) upper 95%"]),
                    "p": float(s["p"]),
                    "ph_p": float(ph_p.loc[idp]),
                    "ph_min_p": float(ph_p.min()),
                    "concordance": float(cph.concordance_index_),
                    "idp_sd": sd,
                    "follow_up_years": float(d["time_years"].median()),
                    "converged": True,
                    "note": "",
                }
            )
    out = pd.DataFrame(rows, columns=[c for c in COX_DTYPES if c not in CORRECTION_COLUMNS])
    out["covariates"] = " + ".join(covariates)
    return conform(add_corrections(out), COX_DTYPES)
