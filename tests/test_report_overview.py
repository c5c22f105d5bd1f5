"""The report's first page: counts at each step, QC failures with counts, key phenotypes by sex
(median and IQR) and links to the headline figures, as reStructuredText that renders cleanly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from docutils.core import publish_parts

from cardiopheno.cohort_check import COUNT_COLUMNS
from cardiopheno.report import (
    door_rst,
    escape,
    overview_rst,
    phenotype_summary,
    qc_failures,
    write_overview,
)

COUNTS = pd.DataFrame(
    {"stage": ["given", "segmented", "qc_passed", "analysed"], "n": [100, 98, 93, 92],
     "lost": [0, 2, 5, 1],
     "top_reasons": ["", "segmentation: cannot read sub_1*.nii (2)", "qc: img_finite: NaN (3)",
                     "covariates: missing age (1)"]}
)  # fmt: skip
FIGURES = {"PheWAS: Manhattan plot": "results/figures/phewas/manhattan.png",
           "Kaplan-Meier": "results/figures/survival/km_heart_failure__LVEF.png"}  # fmt: skip


def _qc(n: int = 100) -> pd.DataFrame:
    qc = pd.DataFrame({"eid": [str(i) for i in range(n)], "img_finite": True,
                       "seg_classes": True, "pheno_ranges": None})  # fmt: skip
    qc.loc[:2, "img_finite"] = False
    qc.loc[2:3, "seg_classes"] = False
    qc["qc_pass"] = qc["img_finite"] & qc["seg_classes"]
    return qc


def _render(text: str) -> str:
    """The text as Snakemake's report renders its description: the items' file names are targets."""
    links = "\n".join(f".. _{p.rsplit('/', 1)[1]}: javascript:void(0)" for p in FIGURES.values())
    return publish_parts(text + "\n\n" + links, writer="html")["html_body"]


def test_qc_failures_count_subjects_per_check_commonest_first():
    fails = qc_failures(_qc())
    assert fails[["check", "failed"]].values.tolist() == [["img_finite", 3], ["seg_classes", 2]]


def test_phenotype_summary_is_median_and_iqr_by_sex():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"sex": rng.integers(0, 2, 200), "LVEF": rng.normal(60, 5, 200)})
    s = phenotype_summary(frame, ["LVEF", "absent"], {"LVEF": "%"}).set_index("sex")
    men = frame.loc[frame["sex"] == 1, "LVEF"]
    assert s.loc["men", "median"] == pytest.approx(men.median())
    assert s.loc["men", "q3"] == pytest.approx(np.percentile(men, 75))
    assert s.loc["men", "n"] == len(men) and set(s["idp"]) == {"LVEF"}


def test_overview_gives_counts_failures_phenotypes_and_figure_links():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"sex": np.repeat([0, 1], 50), "LVEDV": rng.normal(150, 20, 100)})
    text = overview_rst(
        COUNTS, _qc(), phenotype_summary(frame, ["LVEDV"], {"LVEDV": "mL"}), FIGURES
    )
    assert "**100** subjects given, **98** segmented, **93** passed quality control" in text
    assert "**92** were analysed" in text
    html = _render(text)
    assert "system-message" not in html and "Unknown target" not in html
    for expected in ["QC passed", "img_finite", "no NaN or infinite voxels",
                     "4 of 100 subjects fail", "LVEDV (mL)", "women (n = 50)", "sub_1*.nii",
                     'href="javascript:void(0)">PheWAS: Manhattan plot</a>']:  # fmt: skip
        assert expected in html, expected


def test_overview_of_a_cohort_given_as_tables_says_so():
    qc = pd.DataFrame({"eid": ["1", "2"], "qc_pass": True})
    text = overview_rst(None, qc, phenotype_summary(pd.DataFrame({"sex": []}), []), {}, n_given=2)
    assert "**2** subjects given as tables" in text and "No subject failed" in text
    assert "system-message" not in publish_parts(text, writer="html")["html_body"]


def test_overview_of_a_manifest_cohort_shows_what_the_door_found():
    tables = pd.DataFrame(
        [("manifest", "m.csv", 100, 100, 100, 0, 0), ("covariates", "c.csv", 99, 98, 97, 1, 1)],
        columns=list(COUNT_COLUMNS),
    )
    left_out = pd.DataFrame(
        {"eid": ["7", "8", "9"], "reason": ["covariates: missing age"] * 2
         + ["covariates: subject absent from the covariates table"]}
    )  # fmt: skip
    door = door_rst(tables, left_out)
    text = overview_rst(COUNTS, _qc(), phenotype_summary(pd.DataFrame({"sex": []}), []), {},
                        door=door)  # fmt: skip
    html = publish_parts(text, writer="html")["html_body"]
    assert "system-message" not in html
    assert text.index("Subjects at each step") < text.index("Input tables at the door")
    for expected in ["covariates", "<td>97</td>", "3 manifest subjects will not be analysed",
                     "covariates: missing age</td>\n<td>2</td>"]:  # fmt: skip
        assert expected in html, expected
    assert "will not be analysed" not in door_rst(tables, left_out.iloc[:0])


def test_escape_keeps_markup_literal():
    assert escape("a*b_c `d` |e|") == r"a\*b\_c \`d\` \|e\|"


def test_write_overview_writes_the_page_and_headline_counts(tmp_path):
    from cardiopheno.synth.tables import write_table_cohort

    write_table_cohort(tmp_path, 60, seed=2)
    counts = tmp_path / "counts.csv"
    COUNTS.to_csv(counts, index=False)
    rst, meta = tmp_path / "overview.rst", tmp_path / "metadata.yaml"
    write_overview(tmp_path / "qc.parquet", tmp_path / "phenotypes.parquet",
                   tmp_path / "covariates.csv", rst, meta, ["LVEF"], FIGURES, counts=counts)  # fmt: skip
    assert "LVEF (%)" in rst.read_text()
    assert yaml.safe_load(meta.read_text()) == {"Subjects given": 100, "Subjects analysed": 92}
