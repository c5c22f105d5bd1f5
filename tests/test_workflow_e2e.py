"""The whole workflow, end to end, on a tiny synthetic cohort: every stage runs, every subject is
accounted for, the faulty one is caught, and clean subjects' phenotypes match the generator's truth.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cardiopheno.io.areas import areas_path
from cardiopheno.io.tables import file_metadata, read_table

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CONFIG = {
    "cohort": {"source": "synthetic"},
    # Six subjects, one of them faulty (ceil(0.1 * 6) = 1), in two batches.
    "synthetic": {"n_subjects": 6, "seed": 3, "fault_fraction": 0.1},
    "batching": {"batch_size": 3},
    "figures": {"formats": ["png"]},
    # strain (not a default family: it is slow) with few tracking steps: this test checks the
    # plumbing, benchmarks the accuracy
    "phenotypes": {
        "families": [
            "lv_function",
            "rv_function",
            "volume_curve",
            "wall_thickness",
            "atrial_function",
            "aortic_function",
            "strain",
            "longitudinal_strain",
        ],
        "strain": {"iterations": [15, 15, 10]},
    },
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    res = subprocess.run(
        [str(SNAKEMAKE), "--workflow-profile", str(ROOT / "workflow/profiles/default"),
         "--cores", "2", "--configfile", str(cfg), "-d", str(work), "-s", str(ROOT / "Snakefile")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-6000:]
    return work / "results"


@pytest.mark.slow
def test_every_subject_is_accounted_for(run):
    subjects = read_table(run / "run_summary/subjects.parquet")
    assert len(subjects) == 6
    counts = pd.read_csv(run / "run_summary/counts.csv").set_index("stage")
    assert counts.loc["given", "n"] == 6
    faults = read_table(run / "cohort/truth/faults.parquet")
    assert len(faults) == 1
    bad = subjects.set_index("eid").loc[faults["eid"].iloc[0]]
    assert not bad["qc_passed"] and bad["reason"], "the faulty subject must fail with a reason"
    assert len(read_table(run / "phenotypes.parquet")) == 6  # failed subjects keep a (NaN) row


@pytest.mark.slow
def test_phenotypes_from_the_shipped_model_match_the_truth(run):
    pheno = read_table(run / "phenotypes.parquet").set_index("eid")
    qc = read_table(run / "qc.parquet").set_index("eid")
    truth = read_table(run / "cohort/truth/idps.parquet").set_index("eid")
    ok = qc.index[qc["qc_pass"].astype(bool)]
    assert len(ok) >= 4
    for idp, tol in {"LVEDV": 0.08, "LVESV": 0.15, "LVM": 0.15, "RVEDV": 0.10}.items():
        rel = (pheno.loc[ok, idp] - truth.loc[ok, idp]).abs() / truth.loc[ok, idp]
        assert rel.max() < tol, f"{idp}: relative errors {rel.round(3).to_dict()}"
    assert (pheno.loc[ok, "LVEF"] - truth.loc[ok, "LVEF"]).abs().max() < 5.0


@pytest.mark.slow
def test_tables_carry_provenance_and_statistics_ran(run):
    meta = file_metadata(run / "phenotypes.parquet")
    assert len(meta["model_sha256"]) == 64 and meta["config_hash"]
    for table in (
        "association/associations.parquet",
        "phewas/phewas.parquet",
        "survival/cox.parquet",
    ):
        assert (run / table).is_file(), table
    assert (run / "figures/qc_summary.png").stat().st_size > 10_000
    assert (run / "figures/synth_montage.png").stat().st_size > 10_000


@pytest.mark.slow
def test_every_view_is_segmented_and_gives_its_phenotypes(run):
    """The demo cohort's long-axis and aortic views go through segmentation, QC and the atrial
    and aortic families; the model's atrial volumes and aortic areas are near the truth."""
    pheno = read_table(run / "phenotypes.parquet").set_index("eid")
    qc = read_table(run / "qc.parquet").set_index("eid")
    truth = read_table(run / "cohort/truth/idps.parquet").set_index("eid")
    for view in ("la_2ch", "la_4ch", "ao"):
        seg = pd.concat(read_table(p) for p in sorted((run / f"segment_{view}").glob("*.parquet")))
        assert seg["ok"].all(), seg.loc[~seg["ok"], "reason"].tolist()
    clean = qc.index[qc["qc_pass"].astype(bool) & (qc["qc_masked_idps"] == "")]
    assert len(clean) >= 3
    for idp, tol in {
        "LAV_max": 0.15,
        "RAV_max": 0.25,
        "AAo_max_area": 0.15,
        "DAo_max_area": 0.15,
    }.items():
        rel = (pheno.loc[clean, idp] - truth.loc[clean, idp]).abs() / truth.loc[clean, idp]
        assert rel.max() < tol, f"{idp}: relative errors {rel.round(3).to_dict()}"
    assert (pheno.loc[clean, "LAEF"] - truth.loc[clean, "LAEF"]).abs().max() < 10.0
    # the aortic model measures sub-pixel areas beside its labels; distensibility reads them
    ao = pd.concat(read_table(p) for p in sorted((run / "segment_ao").glob("*.parquet")))
    assert all(areas_path(p).is_file() for p in ao.loc[ao["source"] == "model", "seg_ao"])
    for idp in ("AAo_distensibility", "DAo_distensibility"):
        rel = (pheno.loc[clean, idp] - truth.loc[clean, idp]).abs() / truth.loc[clean, idp]
        assert rel.median() < 0.15, f"{idp}: relative errors {rel.round(3).to_dict()}"
    curves = pd.concat(read_table(p) for p in (run / "phenotypes/curves").glob("*.parquet"))
    assert {"LA_biplane_volume_ml", "RA_4ch_volume_ml"} <= set(curves["curve"])
    assert (run / "figures/atria/atrial_curves.png").stat().st_size > 10_000


@pytest.mark.slow
def test_report_first_page_gives_the_run_summary(run):
    counts = pd.read_csv(run / "run_summary/counts.csv").set_index("stage")["n"]
    overview = (run / "report/overview.rst").read_text()
    assert f"**{counts['given']}** subjects given, **{counts['segmented']}** segmented" in overview
    assert f"**{counts['analysed']}** were analysed" in overview
    assert "Key phenotypes" in overview and "`PheWAS: Manhattan plot <manhattan.png_>`_" in overview


@pytest.mark.slow
def test_strain_flows_into_phenotypes_qc_curves_and_figures(run):
    pheno = read_table(run / "phenotypes.parquet").set_index("eid")
    qc = read_table(run / "qc.parquet").set_index("eid")
    ok = qc.index[qc["qc_pass"].astype(bool)]
    assert pheno.loc[ok, "Ecc_global"].between(-40, 0).all()
    assert pheno.loc[ok, "Err_global"].between(0, 100).all()
    assert pheno.loc[ok, "Ell_global"].between(-40, 0).all()  # from the shipped 4-chamber model
    assert qc.loc[ok, "strain_tracking"].notna().all()
    # a failed tracking check masks exactly the strain values
    flagged = qc.index[qc["strain_tracking"].eq(False).fillna(False)]
    for eid in flagged:
        masked = set(qc.loc[eid, "qc_masked_idps"].split(","))
        assert "Ecc_global" in masked and "LVEDV" not in masked
    curves = pd.concat(read_table(p) for p in (run / "phenotypes/curves").glob("*.parquet"))
    strain = curves[curves["curve"] == "Ecc_global"]
    assert set(strain["eid"]) >= set(ok)
    assert (strain.groupby("eid")["value"].apply(lambda v: v.abs().min()) == 0).all()  # ED = 0
    assert {"Ell_global", "Err_global"} <= set(curves["curve"])
    assert (run / "figures/strain/strain_bullseye.png").stat().st_size > 10_000
