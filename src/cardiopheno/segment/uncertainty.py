"""How far the key phenotypes move between the segmentation's own passes: a per-subject
uncertainty at no extra network pass.

The segment stage already predicts the ED and ES frames more than once: the plain network and
its flipped-input copies (``flip_ensemble``), or, without an ensemble, the test-time-augmentation
passes behind ``tta_dice_*``. Each pass's own labels, mapped back onto the input grid and
post-processed like the final segmentation, give that pass's LVEDV, LVESV, LVEF, LVM, RVEDV,
RVESV and RVEF, read at the final segmentation's ED and ES frames with the phenotypes'
definitions (:mod:`cardiopheno.definitions`) (voxel count x voxel volume with the slice spacing as through-plane size; EF = 100
(EDV - ESV) / EDV; LVM = 1.05 g/mL x myocardial volume at ED). ``<IDP>_sd`` is the standard
deviation (ddof = 1) of these per-pass values: 0 when every pass gives the same labels, NaN when
there is only one pass (TTA off and no ensemble) or the segmentation was provided.

The columns travel in the segment table and are copied into ``phenotypes.parquet`` beside the
values they describe; the statistics never treat them as IDPs (``cardiopheno.stats.data``
leaves out columns ending in ``_sd``).
"""

from __future__ import annotations

import math

import numpy as np

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML, ejection_fraction
from cardiopheno.io.tables import ColumnSpec

#: IDP -> unit of the IDPs that get an uncertainty column
UNCERTAIN_IDPS = {
    "LVEDV": "mL",
    "LVESV": "mL",
    "LVEF": "%",
    "LVM": "g",
    "RVEDV": "mL",
    "RVESV": "mL",
    "RVEF": "%",
}
SUFFIX = "_sd"

UNCERTAINTY_COLUMNS = {
    f"{idp}{SUFFIX}": ColumnSpec(
        unit,
        f"uncertainty of {idp}: standard deviation (ddof=1) of {idp} computed from each "
        "segmentation pass's own labels (the flip-ensemble members, or the test-time-augmentation "
        "passes when there is no ensemble) at the segmentation's ED and ES frames; 0 when the "
        "passes agree, NaN with one pass or a provided segmentation. Not an IDP",
    )
    for idp, unit in UNCERTAIN_IDPS.items()
}


def pass_phenotypes(counts: np.ndarray, voxel_ml: float) -> dict[str, np.ndarray]:
    """Each pass's key phenotypes from its label counts.

    ``counts``: passes x 2 (ED, ES) x labels (0 background, 1 LV, 2 myocardium, 3 RV) voxel
    counts; ``voxel_ml``: the voxel volume in mL. Returns IDP -> one value per pass.
    """
    v = np.asarray(counts, dtype=float) * float(voxel_ml)
    lvedv, lvesv = v[:, 0, LV_CAVITY], v[:, 1, LV_CAVITY]
    rvedv, rvesv = v[:, 0, RV_CAVITY], v[:, 1, RV_CAVITY]
    return {
        "LVEDV": lvedv,
        "LVESV": lvesv,
        "LVEF": ejection_fraction(lvedv, lvesv),
        "LVM": MYOCARDIAL_DENSITY_G_PER_ML * v[:, 0, LV_MYOCARDIUM],
        "RVEDV": rvedv,
        "RVESV": rvesv,
        "RVEF": ejection_fraction(rvedv, rvesv),
    }


def phenotype_spread(counts: np.ndarray | None, voxel_ml: float) -> dict[str, float]:
    """``<IDP>_sd`` of each key phenotype over the passes (see the module docstring); NaN for
    every column when there are fewer than two passes or the voxel volume is unknown."""
    nan = {name: math.nan for name in UNCERTAINTY_COLUMNS}
    if counts is None or len(counts) < 2 or not math.isfinite(voxel_ml) or voxel_ml <= 0:
        return nan
    values = pass_phenotypes(counts, voxel_ml)
    out = {}
    for idp, v in values.items():
        finite = v[np.isfinite(v)]
        out[f"{idp}{SUFFIX}"] = float(np.std(finite, ddof=1)) if finite.size >= 2 else math.nan
    return out


def error_prediction(sd, abs_error, top: int = 3) -> dict[str, float]:
    """Does a large uncertainty mark a large error? Over subjects with both values: Spearman's
    rank correlation of ``sd`` with ``abs_error`` (scipy), and the mean absolute error of the
    ``top`` most uncertain subjects against that of the rest (``ratio`` > 1: the flagged ones
    are worse). NaN where undefined (fewer than 3 subjects, or no spread in ``sd``)."""
    from scipy.stats import spearmanr

    sd = np.asarray(sd, dtype=float)
    err = np.asarray(abs_error, dtype=float)
    ok = np.isfinite(sd) & np.isfinite(err)
    sd, err = sd[ok], err[ok]
    n = int(sd.size)
    out = {"n": n, "spearman_rho": math.nan, "spearman_p": math.nan, "top_k": 0}
    out.update(mae_top=math.nan, mae_rest=math.nan, ratio=math.nan)
    if n < 3:
        return out
    if np.ptp(sd) > 0 and np.ptp(err) > 0:
        res = spearmanr(sd, err)
        out["spearman_rho"], out["spearman_p"] = float(res.statistic), float(res.pvalue)
    k = max(1, min(int(top), n - 1))
    order = np.argsort(-sd, kind="stable")
    out["top_k"] = k
    out["mae_top"] = float(err[order[:k]].mean())
    out["mae_rest"] = float(err[order[k:]].mean())
    out["ratio"] = out["mae_top"] / out["mae_rest"] if out["mae_rest"] > 0 else math.nan
    return out
