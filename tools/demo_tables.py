"""The demo's tables on a small synthetic cohort, written as CSV, to show that a refactor changes
no result (issue #33): run it before and after the change and compare the two folders.

    .venv/bin/python tools/demo_tables.py write OUT [--subjects 6] [--no-model]
    .venv/bin/python tools/demo_tables.py compare BEFORE AFTER

``write`` generates a seeded synthetic cohort (with faults), segments every view with the shipped
models as the workflow's rules do (the demo config, its schema defaults filled in), computes the
batch's phenotypes and QC, and also the phenotypes and QC of the truth labels. It writes each
table as CSV (timing columns and absolute paths left out) plus the sha256 of every label map.
``compare`` exits 1 naming the columns that differ in each table. To make the baseline from an
earlier commit: ``git archive COMMIT src | tar -x -C DIR`` and run ``write`` with
``PYTHONPATH=DIR/src``.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml
from snakemake.utils import validate

from cardiopheno.io.tables import read_table, write_table
from cardiopheno.phenotypes.batch import phenotypes_batch
from cardiopheno.qc.aorta import AortaQCThresholds
from cardiopheno.qc.batch import qc_batch
from cardiopheno.qc.checks import QCThresholds
from cardiopheno.qc.views import ViewQCThresholds
from cardiopheno.segment.infer import run_batch, status_columns
from cardiopheno.synth.cohort import generate_cohort
from cardiopheno.views import view_spec

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("seconds", "phenotypes_seconds")  # wall times: never compared


def demo_config() -> dict:
    """config/config.yaml with every section's schema defaults filled in (as common.smk does)."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    schemas = ROOT / "workflow/schemas"
    validate(config, str(schemas / "config.schema.yaml"))
    for section in list(config):
        validate(config[section], str(schemas / f"config.{section}.schema.yaml"), set_default=True)
    return config


def _csv(table: pd.DataFrame, path: Path, root: Path) -> None:
    table = table.drop(columns=[c for c in TIMING if c in table.columns])
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(
                lambda v: v.replace(str(root), "<ROOT>") if isinstance(v, str) else v
            )
    table.to_csv(path, index=False)  # floats written to round-trip exactly


def _label_hashes(root: Path) -> list[tuple[str, str]]:
    """sha256 of the voxels of every label map the segment stage wrote under ``root``."""
    out = []
    for path in sorted(p for d in root.glob("segment*") for p in d.rglob("*.nii.gz")):
        data = np.asarray(nib.load(path).dataobj)
        out.append((str(path.relative_to(root)), hashlib.sha256(data.tobytes()).hexdigest()))
    return out


def _truth_segment_table(cohort: Path, eids: list[str], out: Path) -> Path:
    """A segment status table whose label maps are the cohort's truth labels."""
    table = pd.DataFrame(
        {
            "eid": eids,
            "seg_sa": [str(cohort / "truth" / "labels" / f"{e}.nii.gz") for e in eids],
            "source": "provided",
            "ok": True,
            "reason": "",
            "seconds": 0.0,
            "frame_interval_ms": float("nan"),
            "frame_interval_source": "none",
        }
    )
    for eid_path in table["seg_sa"]:
        if not Path(eid_path).is_file():
            raise SystemExit(f"truth labels missing: {eid_path}")
    columns = status_columns(view_spec("sa"))
    write_table(table, out, {k: v for k, v in columns.items() if k in table.columns})
    return out


def _stages(tag, config, segment, manifest, covariates, views, work, dest) -> None:
    pheno = work / f"{tag}_phenotypes.parquet"
    curves = work / f"{tag}_curves.parquet"
    options = {k: v for k, v in config["phenotypes"].items() if isinstance(v, dict)}
    phenotypes_batch(
        segment, pheno, covariates=covariates, families=config["phenotypes"]["families"],
        ed_frame=config["phenotypes"]["ed_frame"], config=config, view_tables=views,
        curves_out=curves, manifest=manifest, options=options,
    )  # fmt: skip
    qc = config["qc"]
    qc_batch(
        segment, manifest, pheno, work / f"{tag}_qc.parquet", work / f"{tag}_montages",
        QCThresholds.from_config(qc), config=config, view_tables=views,
        aorta=AortaQCThresholds.from_config(qc.get("aorta")),
        view_thresholds=ViewQCThresholds.from_config(qc.get("views")),
    )  # fmt: skip
    for name in ("phenotypes", "curves", "qc"):
        _csv(read_table(work / f"{tag}_{name}.parquet"), dest / f"{tag}_{name}.csv", work)


def write(out: Path, subjects: int, model: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    config = demo_config()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifest = generate_cohort(work / "cohort", subjects, seed=7, fault_fraction=0.34, n_jobs=1)
        cohort = manifest.parent
        covariates = cohort / "covariates.csv"
        eids = pd.read_csv(manifest, dtype={"eid": str})["eid"].tolist()
        truth = _truth_segment_table(cohort, eids, work / "truth_segment.parquet")
        _stages("truth", config, truth, manifest, covariates, [], work, out)
        if model:
            settings = {k: v for k, v in config["segmentation"].items() if k != "train"}
            settings["progress"] = False
            # an older run_batch (the baseline) read ed_frame from the config
            has_ed = "ed_frame" in inspect.signature(run_batch).parameters
            ed = {"ed_frame": config["phenotypes"]["ed_frame"]} if has_ed else {}
            tables = {}
            for view in ["sa", *config["segmentation"]["views"]]:
                folder = "segment" if view == "sa" else f"segment_{view}"
                tables[view] = work / f"{folder}.parquet"
                run_batch(manifest, work / folder, tables[view], settings, 2, config, view, **ed)
                _csv(read_table(tables[view]), out / f"{folder}.csv", work)
            views = [tables[v] for v in config["segmentation"]["views"]]
            _stages("model", config, tables["sa"], manifest, covariates, views, work, out)
        hashes = _label_hashes(work)
        pd.DataFrame(hashes, columns=["path", "sha256"]).to_csv(out / "labels.csv", index=False)


def compare(before: Path, after: Path) -> int:
    names = sorted({p.name for p in before.glob("*.csv")} | {p.name for p in after.glob("*.csv")})
    bad = 0
    for name in names:
        a, b = before / name, after / name
        if not (a.is_file() and b.is_file()):
            print(f"{name}: only in {'before' if a.is_file() else 'after'}")
            bad += 1
            continue
        x, y = (pd.read_csv(f).drop(columns=list(TIMING), errors="ignore") for f in (a, b))
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            print(f"{name}: columns or rows differ")
            bad += 1
            continue
        diff = [c for c in x.columns if not x[c].equals(y[c])]
        print(f"{name}: {f'values differ in {diff[:8]}' if diff else 'identical'}")
        bad += bool(diff)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("out", type=Path)
    w.add_argument("--subjects", type=int, default=6)
    w.add_argument("--no-model", action="store_true", help="truth labels only (fast)")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.out, args.subjects, not args.no_model)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
