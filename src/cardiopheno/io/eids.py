"""Subject ids (``eid``) as one type everywhere: text, spelt the same way in every table.

Every table reader (:func:`cardiopheno.io.tables.read_any`, ``read_table``) passes its ``eid``
column through :func:`canonical_eids`, so the manifest, the covariates, the diagnoses and the
deaths agree on what an id is:

- leading and trailing whitespace is dropped (``" 1000001"`` -> ``"1000001"``);
- an integer-valued float, as pandas writes an integer column that held a missing value after a
  join (``1000001.0`` in a float column, or the text ``"1000001.0"``), becomes the integer's text
  (``"1000001"``); a float that is not a whole number (``1000001.5``) is left as written and the
  cohort check refuses it;
- a missing id becomes ``""`` (the checks report empty ids by line).

Leading zeros are kept (``"0001"`` stays ``"0001"``): they may be how a cohort spells its ids, and
the manifest's spelling names each subject's output folder. Two spellings of one number
(``"0001"`` in one table or row, ``"1"`` in another: what a spreadsheet does to ``0001``) are
ambiguous, so the cohort check refuses them (:func:`zero_padding_groups`), naming both.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Text of an integer-valued float: digits, a dot, zeros (``1000001.0``, ``12.000``).
_WHOLE_FLOAT_TEXT = re.compile(r"^(\d+)\.0*$")


def canonical_eids(values) -> pd.Series:
    """``values`` (an ``eid`` column of any dtype) as stripped text, integer-valued floats as
    integers, missing as ``""``; the index is kept."""
    values = pd.Series(values)
    missing = values.isna().to_numpy()
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float)
        whole = ~missing & np.isfinite(numbers) & (numbers == np.round(numbers))
        text = np.where(
            whole, [f"{v:.0f}" for v in np.where(whole, numbers, 0.0)], values.astype(str)
        )
        out = pd.Series(text, index=values.index, dtype=object)
    else:
        out = values.astype(str).str.strip()
        dotted = out.str.contains(".", regex=False).to_numpy()
        if dotted.any():  # the regular expression only where it can match: 100,000 ids in ms
            out[dotted] = out[dotted].str.replace(_WHOLE_FLOAT_TEXT, r"\1", regex=True)
    out[missing] = ""
    return out.astype(object)


def number_key(eids: pd.Series) -> pd.Series:
    """The integer an all-digit eid spells, as text without leading zeros (``"0001"`` -> ``"1"``);
    ``""`` for an eid that is not all digits."""
    eids = pd.Series(eids, dtype=object).astype(str)
    digits = eids.str.fullmatch(r"\d+")
    return eids.str.lstrip("0").replace("", "0").where(digits, "")


def zero_padding_groups(eids: pd.Series) -> list[list[str]]:
    """Groups of distinct eids that spell the same number with different leading zeros
    (``["0001", "001", "1"]``), each sorted; [] when there are none."""
    distinct = pd.Series(pd.unique(pd.Series(eids, dtype=object).astype(str)), dtype=object)
    keys = number_key(distinct)
    numeric = distinct[keys != ""]
    clash = numeric[keys[numeric.index].duplicated(keep=False)]
    return [sorted(group) for _, group in clash.groupby(keys[clash.index], sort=True)]
