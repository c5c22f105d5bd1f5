"""The door (cardiopheno.cohort_check): one fault at a time on a valid two-subject cohort, each
refused with a message naming the file, the column and the value, or let through with its
warning and the counts; the demo's tables pass."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cardiopheno.cohort_check import CohortError, check_cohort, write_door_summary
from cardiopheno.io.covariates import covariate_columns
from cardiopheno.synth.tables import write_table_cohort

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
COLUMNS = ["age", "sex", "imaging_date", "bsa_m2"]
TODAY = pd.Timestamp("2024-01-01")
A, B = "1000001", "1000002"


def valid_tables() -> dict[str, pd.DataFrame]:
    return {
        "manifest": pd.DataFrame({"eid": [A, B], "sa": [f"{A}.nii.gz", f"{B}.nii.gz"]}),
        "covariates": pd.DataFrame(
            {
                "eid": [A, B],
                "age": [50.0, 60.0],
                "sex": [0, 1],
                "height_cm": [165.0, 180.0],
                "weight_kg": [60.0, 82.0],
                "imaging_date": ["2015-01-01", "2016-03-02"],
            }
        ),  # fmt: skip
        "diagnoses": pd.DataFrame({"eid": [A], "icd10": ["I21"], "date": ["2017-01-01"]}),
        "deaths": pd.DataFrame({"eid": [B], "date": ["2019-05-05"], "icd10": ["I50"]}),
    }


def write_cohort(folder: Path, tables: dict[str, pd.DataFrame], parquet=()) -> dict[str, Path]:
    for name in ("x.nii.gz", f"{A}.nii.gz", f"{B}.nii.gz", "0001.nii.gz"):
        (folder / name).write_bytes(b"x")
    paths = {}
    for name, table in tables.items():
        paths[name] = folder / f"{name}.{'parquet' if name in parquet else 'csv'}"
        if name in parquet:
            table.to_parquet(paths[name], index=False)
        else:
            table.to_csv(paths[name], index=False)
    return paths


def run_door(folder: Path, tables: dict[str, pd.DataFrame], parquet=()):
    paths = write_cohort(folder, tables, parquet)
    others = {k: v for k, v in paths.items() if k != "manifest"}
    return check_cohort(paths["manifest"], others, COLUMNS, today=TODAY), paths


def setter(table: str, **columns) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        for col, values in columns.items():
            t[table][col] = values

    return change


def rows(table: str, frame: pd.DataFrame) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        t[table] = frame

    return change


def extra_row(table: str, **values) -> Callable[[dict], None]:
    def change(t: dict) -> None:
        base = t[table].iloc[[0]].copy()
        for col, value in values.items():
            base[col] = value
        t[table] = pd.concat([t[table], base], ignore_index=True)

    return change


def drop_column(table: str, col: str) -> Callable[[dict], None]:
    return lambda t: t[table].drop(columns=[col], inplace=True)


# (case, change, parquet tables, texts the error holds): each a problem the door refuses
REFUSED = [
    ("empty manifest", rows("manifest", pd.DataFrame(columns=["eid", "sa"])), (),
     ["manifest.csv: no subjects (a header and no rows)"]),
    ("conflicting covariates", extra_row("covariates", age=61.0), (),
     [f"covariates.csv: eid {A} on lines 2 and 4 with different values (age: 50.0 / 61.0)"]),
    ("conflicting manifest rows", extra_row("manifest", sa=f"{B}.nii.gz"), (),
     [f"manifest.csv: duplicate eid(s): {A} (lines 2 and 4, different rows)"]),
    ("diagnoses without icd10", drop_column("diagnoses", "icd10"), (),
     ["diagnoses.csv: missing required column(s): icd10 (has: eid, date)"]),
    ("deaths without date", drop_column("deaths", "date"), (),
     ["deaths.csv: missing required column(s): date"]),
    ("unreadable diagnosis date", setter("diagnoses", date=["31/12/2019"]), (),
     ["diagnoses.csv: column date: not a date (YYYY-MM-DD): '31/12/2019' (line 2)"]),
    ("no ICD-10 code at all", setter("diagnoses", icd10=["12345"]), (),
     ["diagnoses.csv: column icd10: not an ICD-10 code", "12345 (line 2)"]),
    ("covariates share no eid", setter("covariates", eid=["2000001", "2000002"]), (),
     ["covariates.csv: shares no eid with the manifest (manifest: 1000001, 1000002; "
      "covariates: 2000001, 2000002)"]),
    ("diagnoses share no eid", setter("diagnoses", eid=["2000001"]), (),
     ["diagnoses.csv: shares no eid with the manifest", "only its header means no records"]),
    ("covariates with a header only", rows("covariates", valid_tables()["covariates"][:0]), (),
     ["covariates.csv: no rows: no subject can be analysed"]),
    ("zero padding across tables",
     lambda t: (t["manifest"].__setitem__("eid", ["0001", B]),
                t["manifest"].__setitem__("sa", ["0001.nii.gz", f"{B}.nii.gz"]),
                t["covariates"].__setitem__("eid", ["1", B])), (),
     ["covariates.csv: column eid: '1' is the manifest's '0001' with other leading zeros"]),
    ("zero padding within a table", setter("covariates", eid=["01", "1"]), (),
     ["covariates.csv: column eid: '01' and '1' spell one number with different leading zeros"]),
    ("eid not a whole number", setter("covariates", eid=[1000001.5, 1000002.0]), ("covariates",),
     ["covariates.parquet: column eid: not a whole number: '1000001.5' (line 2)"]),
    ("empty eid", setter("covariates", eid=[A, None]), (),
     ["covariates.csv: column eid: empty on line(s) 3"]),
    ("impossible age", setter("covariates", age=[50.0, 500.0]), (),
     ["covariates.csv: column age: ages outside [0, 120] years: 500.0 (line 3)"]),
    ("height in metres", setter("covariates", height_cm=[1.65, 180.0]), (),
     [f"covariates.csv: eid {A} (line 2): height_cm 1.65", "did you give m"]),
    ("sex not a code", setter("covariates", sex=[0, 2]), (),
     ["covariates.csv: column sex: values that are not a sex code", "2 (line 3)"]),
    ("covariates file missing", lambda t: (t.pop("covariates"), None)[1], (), []),
    ("provided segmentation is a folder", setter("manifest", seg_sa=["", "."]), (),
     ["manifest.csv: column seg_sa: a folder, not a label-map file, for 1000002"]),
    ("provided segmentation is the image", setter("manifest", seg_sa=["", f"{B}.nii.gz"]), (),
     ["manifest.csv: column seg_sa: the sa image itself, not its labels, for eids 1000002"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "parquet", "expected"),
    [pytest.param(c, p, e, id=i) for i, c, p, e in REFUSED],
)
def test_a_fault_is_refused_naming_file_column_and_value(tmp_path, change, parquet, expected):
    tables = valid_tables()
    change(tables)
    if "covariates" not in tables:  # the config names a file that is not there
        paths = write_cohort(tmp_path, tables)
        paths["covariates"] = tmp_path / "covariates.csv"
        expected = [f"covariates {tmp_path / 'covariates.csv'}: file not found"]
        with pytest.raises(CohortError) as err:
            check_cohort(paths.pop("manifest"), paths, COLUMNS, today=TODAY)
    else:
        with pytest.raises(CohortError) as err:
            run_door(tmp_path, tables, parquet)
    text = str(err.value)
    assert text.startswith("cohort has ")
    for part in expected:
        assert part in text, text
    assert "Traceback" not in text and " object at 0x" not in text


def test_every_problem_of_every_table_in_one_error(tmp_path):
    tables = valid_tables()
    for change in (REFUSED[16][1], REFUSED[1][1], REFUSED[3][1], REFUSED[4][1]):
        change(tables)
    with pytest.raises(CohortError) as err:
        run_door(tmp_path, tables)
    tables = [p.split(" ", 1)[0] for p in err.value.problems]
    assert tables == ["covariates", "covariates", "diagnoses", "deaths"], err.value.problems


# (case, change, parquet tables, a warning's text, {table: {count column: value}}, left out)
WARNED = [
    ("exact duplicate covariates row", extra_row("covariates"), (),
     "covariates.csv: 1 exact duplicate row(s) dropped (line(s) 4)",
     {"covariates": {"rows": 2, "exact_duplicates_dropped": 1}}, {}),
    ("exact duplicate manifest row", extra_row("manifest"), (),
     "manifest.csv: 1 exact duplicate row(s) dropped (line(s) 4)",
     {"manifest": {"rows": 2, "exact_duplicates_dropped": 1}}, {}),
    ("a subject without covariates", lambda t: t.update(covariates=t["covariates"][:1]), (),
     "covariates.csv: 1 of 2 manifest subjects have no row (eids 1000002)",
     {"covariates": {"manifest_subjects_covered": 1}},
     {B: "covariates: subject absent from the covariates table"}),
    ("eid in a table but not in the manifest", extra_row("diagnoses", eid="3000003"), (),
     "diagnoses.csv: 1 eid(s) not in the manifest (eids 3000003): their rows are not used",
     {"diagnoses": {"subjects": 2, "manifest_subjects_covered": 1,
                    "subjects_not_in_manifest": 1}}, {}),
    ("same image under two eids", setter("manifest", sa=["x.nii.gz", "x.nii.gz"]), (),
     "manifest.csv: column sa: the same file for eids 1000001, 1000002", {}, {}),
    ("a folder among NIfTI files", setter("manifest", sa=[f"{A}.nii.gz", "."]), (),
     "manifest.csv: column sa: 1 path(s) are folders while 1 are NIfTI files (eids 1000002)", {}, {}),
    ("one unreadable date among good ones", extra_row("diagnoses", date="soon"), (),
     "diagnoses.csv: column date: not a date (YYYY-MM-DD): 'soon' (line 3)", {}, {}),
    ("several death records", extra_row("deaths", date="2019-06-01"), (),
     "deaths.csv: 1 subject(s) with several death records (line(s) 2, 3)", {}, {}),
    ("missing age", setter("covariates", age=[50.0, None]), (), None, {},
     {B: "covariates: missing age"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "parquet", "warning", "counts", "left_out"),
    [pytest.param(c, p, w, n, o, id=i) for i, c, p, w, n, o in WARNED],
)
def test_a_likely_mistake_is_a_warning_with_the_counts(
    tmp_path, caplog, change, parquet, warning, counts, left_out
):
    tables = valid_tables()
    change(tables)
    checked, _ = run_door(tmp_path, tables, parquet)
    if warning:
        assert any(warning in w for w in checked.warnings), checked.warnings
        assert warning in caplog.text
    by_table = checked.counts.set_index("table")
    for table, expected in counts.items():
        for column, value in expected.items():
            assert by_table.at[table, column] == value, (table, column)
    assert dict(zip(checked.left_out["eid"], checked.left_out["reason"], strict=True)) == left_out


@pytest.mark.parametrize("eids", [[1000001.0, 1000002.0], [" 1000001", "1000002 "]])
def test_float_and_spaced_eids_match_the_other_tables(tmp_path, eids):
    """A Parquet manifest whose eid is float (pandas after a join with missing values)."""
    tables = valid_tables()
    tables["manifest"]["eid"] = eids
    checked, _ = run_door(tmp_path, tables, parquet=("manifest",))
    assert checked.manifest["eid"].tolist() == [A, B]
    covered = checked.counts.set_index("table")["manifest_subjects_covered"]
    assert covered.tolist() == [2, 2, 1, 1]
    assert checked.warnings == [] and checked.left_out.empty


def test_the_valid_cohort_passes_and_the_summary_is_written(tmp_path):
    checked, paths = run_door(tmp_path, valid_tables())
    assert checked.warnings == []
    write_door_summary(checked, tmp_path / "run_summary")
    door = pd.read_csv(tmp_path / "run_summary" / "door.csv")
    assert door["table"].tolist() == ["manifest", "covariates", "diagnoses", "deaths"]
    assert door["rows"].tolist() == [2, 2, 1, 1]
    assert door["file"].tolist()[1] == str(paths["covariates"])
    subjects = pd.read_csv(tmp_path / "run_summary" / "door_subjects.csv")
    assert list(subjects.columns) == ["eid", "reason"] and subjects.empty


def test_the_demo_population_tables_pass_the_door(tmp_path):
    """The tables the demo generates (its population and outcome models), 300 subjects."""
    write_table_cohort(tmp_path, 300, seed=0)
    cov = pd.read_csv(tmp_path / "covariates.csv", dtype={"eid": str})
    for eid in cov["eid"]:
        (tmp_path / f"{eid}.nii.gz").write_bytes(b"x")
    pd.DataFrame({"eid": cov["eid"], "sa": cov["eid"] + ".nii.gz"}).to_csv(
        tmp_path / "manifest.csv", index=False
    )
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    tables = {k: tmp_path / f"{k}.csv" for k in ("covariates", "diagnoses", "deaths")}
    checked = check_cohort(tmp_path / "manifest.csv", tables, covariate_columns(config))
    assert checked.warnings == [] and checked.left_out.empty
    covered = checked.counts.set_index("table")["manifest_subjects_covered"]
    assert covered["covariates"] == 300 and 0 < covered["deaths"] < covered["diagnoses"] <= 300
    assert np.all(checked.counts["exact_duplicates_dropped"] == 0)


# ------------------------------------------------------------------ at the dry run
def dry_run(tmp_path: Path, cohort: dict, **sections) -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.yaml"
    config = {"cohort": {"source": "manifest", **{k: str(v) for k, v in cohort.items()}}}
    cfg.write_text(yaml.safe_dump({**config, **sections}))
    return subprocess.run(
        [str(SNAKEMAKE), "-n", "--cores", "1", "--configfile", str(cfg), "-d",
         str(tmp_path / "w"), "-s", str(ROOT / "Snakefile")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, timeout=180,
    )  # fmt: skip


def test_the_dry_run_refuses_every_fault_at_once_and_writes_nothing_to_run(tmp_path):
    """The issue's faults together: a float-eid Parquet manifest (matched, not a fault any more),
    a subject twice in the covariates with different ages, and diagnoses without icd10."""
    tables = valid_tables()
    tables["manifest"]["eid"] = [1000001.0, 1000002.0]
    extra_row("covariates", age=61.0)(tables)
    drop_column("diagnoses", "icd10")(tables)
    paths = write_cohort(tmp_path, tables, parquet=("manifest",))
    res = dry_run(tmp_path, paths)
    assert res.returncode != 0
    assert "cohort has 2 problem(s)" in res.stdout, res.stdout[-3000:]
    assert f"eid {A} on lines 2 and 4 with different values (age: 50.0 / 61.0)" in res.stdout
    assert "diagnoses.csv: missing required column(s): icd10" in res.stdout
    assert not (tmp_path / "w" / "results" / "batches").exists()


def test_the_dry_run_writes_what_the_run_will_analyse(tmp_path):
    tables = valid_tables()
    tables["covariates"] = tables["covariates"][:1]
    res = dry_run(tmp_path, write_cohort(tmp_path, tables))
    assert res.returncode == 0, res.stdout[-3000:]
    assert "1 of 2 manifest subjects have no row (eids 1000002)" in res.stdout
    assert "cohort: 2 subjects in the manifest; covariates rows for 1" in res.stdout
    summary = tmp_path / "w" / "results" / "run_summary"
    assert pd.read_csv(summary / "door.csv")["manifest_subjects_covered"].tolist() == [2, 1, 1, 1]
    left_out = pd.read_csv(summary / "door_subjects.csv", dtype=str)
    assert left_out.to_dict("records") == [
        {"eid": B, "reason": "covariates: subject absent from the covariates table"}
    ]


def test_a_configured_checkpoint_that_would_run_code_stops_the_dry_run(tmp_path):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "weights.pt"
    code = f"open({str(marker)!r}, 'w').close()"
    torch.save({"state_dict": {}, "metadata": Payload(code)}, evil)
    paths = write_cohort(tmp_path, valid_tables())
    res = dry_run(tmp_path, paths, segmentation={"checkpoints": {"ao": str(evil)}})
    assert res.returncode != 0
    assert f"segmentation.checkpoints.ao: {evil}: refused" in res.stdout, res.stdout[-3000:]
    assert not marker.exists()


class Payload:
    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))
