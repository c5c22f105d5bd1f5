"""QC of a batch of subjects (per-subject checks) and the cohort merge (robust outliers).

Every subject of the segment stage's table gets a row: an unreadable image or a failed
segmentation is a failed check with its reason, never a missing row or a crashed batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from cardiopheno.io.manifest import image_paths
from cardiopheno.io.nifti import ImageReadError, load_cine
from cardiopheno.io.paths import input_root, scrub_paths
from cardiopheno.io.tables import ColumnSpec, file_metadata, read_table, write_table
from cardiopheno.qc.aorta import AortaQCThresholds
from cardiopheno.qc.checks import (
    ADVISORY_CHECKS,
    ADVISORY_GUARDS,
    ALL_CHECKS,
    DESCRIPTIONS,
    IMAGE_CHECKS,
    SEGMENTATION_CHECKS,
    CheckResult,
    QCThresholds,
)
from cardiopheno.qc.image import check_image
from cardiopheno.qc.montage import draw_montage
from cardiopheno.qc.phenotype import check_phenotypes, check_strain, robust_outliers
from cardiopheno.qc.segmentation import check_segmentation, check_tta
from cardiopheno.qc.summary import draw_summary
from cardiopheno.qc.views import (
    VIEW_CHECKS,
    VIEW_DESCRIPTIONS,
    ViewEvidence,
    ViewQCThresholds,
    check_views,
)

log = logging.getLogger(__name__)
BASIC = ("img_readable", "seg_readable")  # a subject passes only if these ran and passed
COLUMNS = {
    c: ColumnSpec("", f"QC check passed: {DESCRIPTIONS[c]} (null: not run)") for c in ALL_CHECKS
}
COLUMNS["qc_pass"] = ColumnSpec("", "subject passes every QC check (advisory checks aside)")
COLUMNS["qc_reasons"] = ColumnSpec("", "readable reasons of the failed checks, '; '-separated")
COLUMNS.update(
    {
        c: ColumnSpec("", f"view QC check passed: {VIEW_DESCRIPTIONS[c]} (null: not run)")
        for c in VIEW_CHECKS
    }
)
COLUMNS["qc_view_reasons"] = ColumnSpec(
    "",
    "failed checks that mask phenotypes, not qc_pass: the other views' and the advisory "
    "strain_tracking ('; '-separated)",
)
COLUMNS["qc_masked_idps"] = ColumnSpec(
    "", "phenotypes that failed their view's QC (','-separated): left out of the statistics"
)


def subject_checks(
    eid: str,
    image_path: str | None,
    seg_path: str | None,
    seg_ok: bool,
    seg_reason: str,
    seg_row,
    pheno: Mapping | None,
    th: QCThresholds,
) -> tuple[list[CheckResult], np.ndarray | None, np.ndarray | None]:
    """Run every per-subject check; return results plus the image and labels (for montages)."""
    results: list[CheckResult] = []
    image = labels = None
    if not image_path:
        results.append(CheckResult.fail("img_readable", "subject not in the manifest"))
    else:
        try:
            cine = load_cine(image_path)
            image = cine.data
            results += check_image(cine, th)
        except ImageReadError as exc:
            results.append(CheckResult.fail("img_readable", str(exc)))
    if image is None:
        results += [CheckResult.skipped(n, "image unreadable") for n in IMAGE_CHECKS[1:]]

    if not seg_ok:
        results.append(CheckResult.fail("seg_readable", f"segmentation failed: {seg_reason}"))
    elif not seg_path or not Path(seg_path).is_file():
        results.append(CheckResult.fail("seg_readable", f"segmentation file missing: {seg_path}"))
    else:
        try:
            seg = load_cine(seg_path, dtype=np.uint8)
            if image is not None and seg.data.shape != image.shape:
                results.append(
                    CheckResult.fail(
                        "seg_readable",
                        f"segmentation shape {seg.data.shape} differs from image {image.shape}",
                    )
                )
            else:
                labels = seg.data
                results += check_segmentation(labels, seg.spacing, th)
        except ImageReadError as exc:
            results.append(CheckResult.fail("seg_readable", str(exc)))
    done = {r.name for r in results}
    results += [
        CheckResult.skipped(n, "segmentation unavailable")
        for n in SEGMENTATION_CHECKS
        if n not in done and n != "seg_tta_agreement"
    ]
    results.append(check_tta(seg_row, th))
    if pheno is not None and bool(pheno.get("phenotypes_ok", False)):
        results += check_phenotypes(pheno, th)
        results.append(check_strain(pheno, th))
    else:
        why = (pheno or {}).get("phenotypes_reason", "") or "no phenotypes"
        results += [
            CheckResult.skipped(n, why)
            for n in ("pheno_ranges", "pheno_sv_agreement", "strain_tracking")
        ]
    return results, image, labels


def summarise(results: Sequence[CheckResult]) -> dict:
    """One table row: a nullable boolean per check, qc_pass and the readable reasons."""
    row: dict = {r.name: r.passed for r in results}
    failed = [r for r in results if r.passed is False and r.name not in ADVISORY_CHECKS]
    row["qc_pass"] = not failed and all(row.get(b) is True for b in BASIC)
    row["qc_reasons"] = "; ".join(f"{r.name}: {r.reason}" for r in failed)
    row["advisory_reasons"] = [
        f"{r.name}: {r.reason}" for r in results if r.name in ADVISORY_CHECKS and r.passed is False
    ]
    return row


def view_row(
    view_paths: Mapping[str, str],
    ao_image: str | None = None,
    aorta: AortaQCThresholds | None = None,
    evidence: ViewEvidence | None = None,
    thresholds: ViewQCThresholds | None = None,
) -> dict:
    """The view QC columns of one subject from its other views' label maps (view -> path);
    ``evidence`` (TTA, short axis, phenotypes) gets the views' affines added here."""
    labels, affines = {}, {}
    for view, path in view_paths.items():
        try:
            cine = load_cine(path, dtype=np.uint8)
            labels[view], affines[view] = cine.data, cine.affine
        except ImageReadError as exc:
            log.warning("view QC: %s", exc)
    evidence = evidence or ViewEvidence()
    evidence.affines = affines
    image = None
    if ao_image and "ao" in labels:
        try:
            image = load_cine(ao_image).data
        except ImageReadError as exc:
            log.warning("view QC: %s", exc)
    results, masked = check_views(labels, image, aorta, evidence, thresholds)
    row = {r.name: r.passed for r in results}
    row["qc_view_reasons"] = "; ".join(
        f"{r.name}: {r.reason}" for r in results if r.passed is False
    )
    row["qc_masked_idps"] = ",".join(sorted(masked))
    return row


def _table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in (*ALL_CHECKS, *VIEW_CHECKS):
        if c not in df.columns:
            df[c] = pd.NA
        df[c] = df[c].astype("boolean")
    df["qc_pass"] = df["qc_pass"].astype(bool)
    for c in ("qc_reasons", "qc_view_reasons", "qc_masked_idps"):
        df[c] = (df[c] if c in df.columns else pd.Series("", index=df.index)).fillna("").astype(str)
    return df[
        [
            "eid",
            *ALL_CHECKS,
            "qc_pass",
            "qc_reasons",
            *VIEW_CHECKS,
            "qc_view_reasons",
            "qc_masked_idps",
        ]
    ]


def qc_batch(
    segment_table: str | os.PathLike,
    manifest: str | os.PathLike,
    phenotypes_table: str | os.PathLike | None,
    out: str | os.PathLike,
    montage_dir: str | os.PathLike,
    thresholds: QCThresholds,
    config: Mapping | None = None,
    view_tables: Sequence[str | os.PathLike] = (),
    aorta: AortaQCThresholds | None = None,
    view_thresholds: ViewQCThresholds | None = None,
) -> pd.DataFrame:
    """QC every subject of a segment batch table (and its other views' label maps, from
    ``view_tables``); montages of failed subjects into montage_dir.

    Reasons show input paths relative to the manifest's folder (:mod:`cardiopheno.io.paths`)."""
    from cardiopheno.phenotypes.batch import view_segmentations

    seg = read_table(segment_table)
    other_views = view_segmentations(view_tables)
    tta = view_tta(view_tables)
    sa = image_paths(manifest)
    ao = image_paths(manifest, "ao")
    pheno = {}
    if phenotypes_table:
        pheno = read_table(phenotypes_table).set_index("eid").to_dict(orient="index")
    Path(montage_dir).mkdir(parents=True, exist_ok=True)
    root = input_root(config)
    rows = []
    for rec in tqdm(seg.itertuples(index=False), total=len(seg), desc="qc"):
        eid = str(rec.eid)
        try:
            results, image, labels = subject_checks(
                eid,
                sa.get(eid),
                getattr(rec, "seg_sa", None),
                bool(getattr(rec, "ok", True)),
                str(getattr(rec, "reason", "") or ""),
                rec,
                pheno.get(eid),
                thresholds,
            )
        except Exception as exc:  # one subject's surprise must not kill the batch
            log.exception("%s: QC crashed", eid)
            results = [CheckResult.fail("img_readable", f"QC error {type(exc).__name__}: {exc}")]
            image = labels = None
        row = {"eid": eid, **summarise(results)}
        row["qc_reasons"] = scrub_paths(
            row["qc_reasons"], (sa.get(eid), getattr(rec, "seg_sa", None)), root
        )
        paths = {k: v for k, v in other_views.get(eid, {}).items() if ":" not in k and v}
        advisory = row.pop("advisory_reasons")
        evidence = ViewEvidence(
            tta.get(eid, {}),
            sa_labels=labels,
            sa_affine=_affine(getattr(rec, "seg_sa", None)) if labels is not None else None,
            phenotypes=pheno.get(eid) or {},
        )
        row.update(view_row(paths, ao.get(eid), aorta, evidence, view_thresholds))
        if (
            advisory
        ):  # e.g. failed strain tracking: its values leave the statistics, not the subject
            guarded = [c for c in (pheno.get(eid) or {}) if c.startswith(ADVISORY_GUARDS)]
            row["qc_view_reasons"] = "; ".join(filter(None, [row["qc_view_reasons"], *advisory]))
            row["qc_masked_idps"] = ",".join(
                sorted(set(filter(None, row["qc_masked_idps"].split(","))) | set(guarded))
            )
        rows.append(row)
        if not row["qc_pass"]:
            draw_montage(Path(montage_dir) / f"{eid}.png", eid, image, labels, row["qc_reasons"])
    df = _table(rows) if rows else _table([{"eid": "", "qc_pass": False, "qc_reasons": ""}])[:0]
    write_table(
        df,
        out,
        columns=COLUMNS,
        config=config,
        model_sha256=file_metadata(segment_table).get("model_sha256", ""),
    )
    log.info("%s: %d subjects, %d fail QC", out, len(df), int((~df["qc_pass"]).sum()))
    return df


def view_tta(view_tables: Sequence[str | os.PathLike]) -> dict[str, dict[str, float]]:
    """eid -> {"<view>:<key>": test-time-augmentation Dice} from the views' segment tables."""
    out: dict[str, dict[str, float]] = {}
    for path in view_tables:
        view = file_metadata(path).get("view", "")
        table = read_table(path)
        for col in (c for c in table.columns if c.startswith("tta_dice_")):
            key = f"{view}:{col.removeprefix('tta_dice_')}"
            for eid, value in zip(table["eid"].astype(str), table[col], strict=True):
                out.setdefault(eid, {})[key] = float(value)
    return out


def _affine(path: str | None) -> np.ndarray | None:
    """A NIfTI's affine from its header alone (None when unreadable)."""
    import nibabel as nib

    try:
        return nib.load(str(path)).affine
    except Exception:  # the segmentation checks report an unreadable file
        return None


def merge_qc(
    batch_tables: Sequence[str | os.PathLike],
    phenotypes: str | os.PathLike,
    out: str | os.PathLike,
    summary_png: str | os.PathLike,
    thresholds: QCThresholds,
    config: Mapping | None = None,
) -> pd.DataFrame:
    """Merge batch QC tables, add the cohort outlier check, write qc.parquet and the summary.

    Median and MAD of each outlier IDP come from the subjects that passed every per-subject
    check, so the failures do not widen the spread that judges them.
    """
    qc = pd.concat([read_table(p) for p in batch_tables], ignore_index=True)
    qc = qc.sort_values("eid", kind="stable").reset_index(drop=True)
    ph = read_table(phenotypes)
    ph_aligned = qc[["eid"]].merge(ph, on="eid", how="left")
    passed, reasons = robust_outliers(ph_aligned, qc["qc_pass"], thresholds)
    has_values = ph_aligned.get("phenotypes_ok", pd.Series(False, index=qc.index)).fillna(False)
    qc["pheno_outlier"] = pd.array(
        np.where(has_values.astype(bool), passed, pd.NA), dtype="boolean"
    )
    newly = ~passed & qc["qc_pass"]
    qc.loc[~passed, "qc_reasons"] = [
        f"{r}; pheno_outlier: {o}" if r else f"pheno_outlier: {o}"
        for r, o in zip(qc.loc[~passed, "qc_reasons"], reasons[~passed], strict=True)
    ]
    qc["qc_pass"] = qc["qc_pass"] & passed
    log.info("cohort outlier check failed %d further subjects", int(newly.sum()))
    qc = _table(qc.to_dict(orient="records"))
    shas = {file_metadata(p).get("model_sha256", "") for p in batch_tables}
    write_table(
        qc,
        out,
        columns=COLUMNS,
        config=config,
        model_sha256=",".join(sorted(s for s in shas if s)),
        extra={"n_batches": len(batch_tables), "outlier_z": thresholds.outlier_z},
    )
    draw_summary(qc, ph, summary_png)
    return qc


def outlier_montages(
    qc_table: str | os.PathLike,
    segment_tables: Sequence[str | os.PathLike],
    manifests: Sequence[str | os.PathLike],
    montage_dir: str | os.PathLike,
) -> list[str]:
    """Montages of the subjects that passed every per-subject check and failed only the cohort
    outlier check (the others got theirs from their batch's QC). Returns their eids.

    An image or segmentation that cannot be read here (moved since QC) gives a card with the
    reason instead of a picture; the rest are still drawn.
    """
    qc = read_table(qc_table)
    only_outlier = qc["pheno_outlier"].eq(False).fillna(False) & qc["qc_reasons"].str.startswith(
        "pheno_outlier:"
    )
    eids = [str(e) for e in qc.loc[only_outlier, "eid"]]
    reasons = dict(zip(qc["eid"].astype(str), qc["qc_reasons"], strict=True))
    Path(montage_dir).mkdir(parents=True, exist_ok=True)
    if not eids:
        return eids
    segs = pd.concat([read_table(p)[["eid", "seg_sa"]] for p in segment_tables])
    seg_path = dict(zip(segs["eid"].astype(str), segs["seg_sa"], strict=True))
    sa: dict[str, str] = {}
    for m in manifests:
        sa.update(image_paths(m))
    for eid in eids:
        image = labels = None
        note = reasons[eid]
        try:
            image = load_cine(sa[eid]).data
            labels = load_cine(seg_path[eid], dtype=np.uint8).data
        except (ImageReadError, KeyError) as exc:
            log.warning("%s: montage without labels (%s)", eid, exc)
            note = f"{note} [montage: {exc}]"
        draw_montage(Path(montage_dir) / f"{eid}.png", eid, image, labels, note)
    log.info("%d montages of cohort outliers in %s", len(eids), montage_dir)
    return eids
