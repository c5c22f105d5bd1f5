"""Multiple-testing corrections, always named: Benjamini-Hochberg FDR and Bonferroni (statsmodels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

#: Column names added by :func:`add_corrections`, with the method each one uses.
CORRECTION_COLUMNS = {
    "q_bh": "Benjamini-Hochberg false discovery rate (q value) over all tests in the table",
    "p_bonferroni": "Bonferroni-adjusted p value (p x number of tests, capped at 1)",
}


def add_corrections(
    df: pd.DataFrame, p_col: str = "p", mask: pd.Series | None = None
) -> pd.DataFrame:
    """Return ``df`` with ``q_bh`` (Benjamini-Hochberg) and ``p_bonferroni`` over its p values.

    Missing p values are left out of the family of tests and get missing corrections. ``mask``
    selects which rows form the family (for example only the IDP terms, not the intercepts); other
    rows get missing corrections too.
    """
    out = df.copy()
    p = out[p_col].to_numpy(dtype=float)
    use = np.isfinite(p)
    if mask is not None:
        use &= mask.to_numpy(dtype=bool)
    q = np.full(len(out), np.nan)
    bonf = np.full(len(out), np.nan)
    if use.any():
        q[use] = multipletests(p[use], method="fdr_bh")[1]
        bonf[use] = multipletests(p[use], method="bonferroni")[1]
    out["q_bh"] = q
    out["p_bonferroni"] = bonf
    return out
