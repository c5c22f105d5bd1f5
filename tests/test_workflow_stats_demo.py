"""The statistics demo's mode (synthetic.images: false) end to end on a small cohort: the tables go
straight to the statistics, figures and report, whose first page gives the cohort and its
phenotypes and opens on them (report metadata), with the rule graph kept under Workflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CONFIG = {
    "cohort": {"source": "synthetic"},
    "synthetic": {"n_subjects": 600, "seed": 1, "images": False},
    "phewas": {"idps": ["LVEDV", "LVM"]},
    "survival": {"idps": ["LVEF"], "outcomes": {"all_cause_death": {"icd10": ["*"], "sources": ["deaths"]}}},
    "figures": {"idps": ["LVEF"], "km_idps": ["LVEF"], "outcomes": ["all_cause_death"]},
}  # fmt: skip


def _snakemake(work: Path, *extra: str) -> None:
    res = subprocess.run(
        [str(SNAKEMAKE), "--workflow-profile", str(ROOT / "workflow/profiles/default"),
         "--cores", "2", "--configfile", str(work / "config.yaml"), "-d", str(work),
         "-s", str(ROOT / "Snakefile"), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-6000:]


@pytest.mark.slow
def test_tables_only_cohort_runs_statistics_figures_and_a_report_opening_on_the_summary(
    tmp_path,
):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    _snakemake(tmp_path)
    res = tmp_path / "results"
    assert not (res / "segment").exists() and not (res / "cohort").exists()
    for fig in ("phewas/manhattan.png", "survival/km_all_cause_death__LVEF.png"):
        assert (res / "figures" / fig).stat().st_size > 10_000, fig
    overview = (res / "report/overview.rst").read_text()
    assert "**600** subjects given as tables" in overview and "LVEF (%)" in overview
    report = tmp_path / "report.html"
    _snakemake(tmp_path, "--report", str(report), "--report-metadata",
               str(res / "report/metadata.yaml"))  # fmt: skip
    html = report.read_text()
    assert "Key phenotypes of the analysed subjects" in html
    assert '"Subjects given": 600' in html  # metadata: the report opens on this page
    assert "statistics demo" in html
