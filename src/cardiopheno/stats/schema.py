"""Fixed schemas of the statistics tables, and what a stage does when data are too few.

A statistics stage on a tiny cohort (or one whose subjects mostly fail QC) must not crash the run:
the analysis raises :class:`NotEstimable` with the reason, and the stage writes its tables with the
normal columns and dtypes (zero rows, or rows marked as not fitted) and the reason in the file
metadata key :data:`NOT_ESTIMABLE_KEY`, which the figure rules read back to draw a "not enough
data" panel. Configuration errors (a configured column that does not exist) are not this: they
raise ``KeyError`` naming the config key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cardiopheno.io.tables import file_metadata

#: File-level metadata key holding why a table has no (estimable) rows; absent when it has.
NOT_ESTIMABLE_KEY = "not_estimable"


class NotEstimable(ValueError):
    """Too little data for an analysis (as opposed to a configuration error)."""


def conform(df: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with exactly the columns of ``dtypes``, in that order and with those dtypes.

    Columns absent from ``df`` are added as missing values (so they must be float, object or
    datetime unless ``df`` is empty); an empty ``df`` becomes a zero-row table of the schema.
    """
    out = df.reindex(columns=list(dtypes))
    return out.astype(dict(dtypes)).reset_index(drop=True)


def empty_table(dtypes: Mapping[str, str]) -> pd.DataFrame:
    """A zero-row table with the columns and dtypes of ``dtypes``."""
    return conform(pd.DataFrame(), dtypes)


def not_estimable_reason(path: str | os.PathLike) -> str:
    """The reason a stage recorded for writing a table without estimates ("" when it has some)."""
    if Path(path).suffix != ".parquet":
        return ""
    return file_metadata(path).get(NOT_ESTIMABLE_KEY, "")
