"""Redraw every statistics figure from the cached tables (no statistics stage is rerun).

Each function takes the input tables' paths and the output paths Snakemake expects, in the
order the rule lists them (one figure per requested IDP/outcome and format).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.cohort_tables import read_cohort_table
from cardiopheno.io.tables import column_specs, read_any
from cardiopheno.plots.association import effects_heatmap, idp_by_age
from cardiopheno.plots.notice import message_figure
from cardiopheno.plots.phewas import manhattan
from cardiopheno.plots.survival import KM_BAND_ALPHA, KM_MIN_EVENTS, forest, km_by_quartile
from cardiopheno.stats.pipeline import load_frame
from cardiopheno.stats.schema import not_estimable_reason

log = logging.getLogger(__name__)
PathLike = str | os.PathLike


def save(fig, path: PathLike, dpi: int = 150) -> None:
    """Write a figure atomically (format from the suffix) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip("."))
    plt.close(fig)


def _by_stem(paths: Sequence[PathLike]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        out.setdefault(p.stem, []).append(p)
    return out


def association_figures(
    phenotypes: PathLike, qc: PathLike | None, covariates: PathLike, associations: PathLike,
    ranges: PathLike, outputs: Sequence[PathLike], cfg: Mapping,
) -> None:  # fmt: skip
    """``{idp}_by_age.{ext}`` per IDP and ``effects_heatmap.{ext}``."""
    frame = load_frame(phenotypes, qc, covariates)
    units = (
        {k: v.unit for k, v in column_specs(phenotypes).items()}
        if str(phenotypes).endswith(".parquet")
        else {}
    )
    assoc, rr = read_any(associations), read_any(ranges)
    reason = not_estimable_reason(associations)
    dpi = cfg.get("dpi", 150)
    for stem, paths in _by_stem(outputs).items():
        if stem == "effects_heatmap":
            fig = effects_heatmap(assoc, reason=reason)
        else:
            idp = stem.removesuffix("_by_age")
            if idp not in frame.columns:
                fig = _missing(f"{idp} is not in phenotypes")
            else:
                fig = idp_by_age(frame, idp, rr, units.get(idp, ""))
        for p in paths[:-1]:
            fig.savefig(p, dpi=dpi)
        save(fig, paths[-1], dpi)


def phewas_figures(phewas: PathLike, outputs: Sequence[PathLike], cfg: Mapping) -> None:
    """``manhattan.{ext}``."""
    table = read_any(phewas)
    fig = manhattan(
        table, n_labels=cfg.get("manhattan_labels", 10), reason=not_estimable_reason(phewas)
    )
    paths = [Path(p) for p in outputs]
    for p in paths[:-1]:
        fig.savefig(p, dpi=cfg.get("dpi", 150))
    save(fig, paths[-1], cfg.get("dpi", 150))


def survival_figures(
    phenotypes: PathLike, qc: PathLike | None, covariates: PathLike, cox: PathLike,
    outcomes: PathLike, outputs: Sequence[PathLike], cfg: Mapping,
) -> None:  # fmt: skip
    """``km_{outcome}__{idp}.{ext}`` and ``cox_forest.{ext}``."""
    frame = load_frame(phenotypes, qc, covariates)
    cox_t, out_t = read_any(cox), read_any(outcomes)
    dpi = cfg.get("dpi", 150)
    for stem, paths in _by_stem(outputs).items():
        if stem == "cox_forest":
            fig = forest(cox_t, reason=not_estimable_reason(cox))
        else:
            outcome, idp = stem.removeprefix("km_").split("__")
            if idp not in frame.columns or outcome not in set(out_t["outcome"]):
                fig = _missing(f"{outcome} or {idp} not in the cached tables")
            else:
                fig = km_by_quartile(
                    frame, out_t, outcome, idp,
                    bands=cfg.get("km_bands", True),
                    band_alpha=cfg.get("km_band_alpha", KM_BAND_ALPHA),
                    min_events=cfg.get("km_min_events", KM_MIN_EVENTS),
                )  # fmt: skip
        for p in paths[:-1]:
            fig.savefig(p, dpi=dpi)
        save(fig, paths[-1], dpi)


def tables_for_report(sources: Mapping[str, PathLike], outputs: Mapping[str, PathLike]) -> None:
    """CSV copies of the result tables, for the HTML report."""
    for key, out in outputs.items():
        df = read_any(sources[key])
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")


def _missing(message: str):
    return message_figure(message)


def atrial_figures(
    curve_tables: Sequence[PathLike],
    qc: PathLike,
    covariates: PathLike,
    outputs: Sequence[PathLike],
) -> None:
    """The cohort's atrial volume curves by sex (QC-passed subjects whose atrial phenotypes
    passed the atrial checks), in every requested format."""
    import pandas as pd

    from cardiopheno.io.covariates import sex_codes
    from cardiopheno.plots.atria import atrial_curves_figure

    curves = pd.concat([read_any(p) for p in curve_tables], ignore_index=True)
    q = read_any(qc).set_index("eid")
    passed = q["qc_pass"].astype(bool)
    masked = q.get("qc_masked_idps", pd.Series("", index=q.index)).fillna("")
    keep = {  # curve -> subjects whose atrium passed QC
        "LA_biplane_volume_ml": set(q.index[passed & ~masked.str.contains("LAV_max")]),
        "RA_4ch_volume_ml": set(q.index[passed & ~masked.str.contains("RAV_max")]),
    }
    curves = curves[
        [e in keep.get(c, set()) for e, c in zip(curves["eid"], curves["curve"], strict=True)]
    ]
    sex = sex_codes(read_cohort_table(covariates).set_index("eid")["sex"])  # 0/1 from M/F etc.
    for path in outputs:
        save(atrial_curves_figure(curves, sex), path)
