"""Real and hostile inputs (issue 13): UK Biobank timing, unsafe or colliding eids, bad config
values, sex codings, impossible ages and dates, malformed ICD-10 codes, absolute paths in reasons
and infinite voxels. Each test failed before the fix it names and passes after it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from cardiopheno.config_checks import ConfigError, check_config
from cardiopheno.io.covariates import CovariatesError, check_covariates, sex_codes
from cardiopheno.io.manifest import ManifestError, eid_problem, load_manifest
from cardiopheno.io.nifti import Cine, load_cine, read_frame_interval, save_nifti
from cardiopheno.io.paths import display_path, scrub_paths
from cardiopheno.io.records import icd10_codes, record_issues
from cardiopheno.io.tables import read_table
from cardiopheno.phenotypes import context_from_files
from cardiopheno.phenotypes._phantom import make_phantom, phantom_image
from cardiopheno.qc.batch import qc_batch
from cardiopheno.qc.checks import QCThresholds
from cardiopheno.qc.image import check_image
from cardiopheno.segment.transforms import PreprocessConfig, SlicePipeline
from cardiopheno.stats.data import analysis_frame
from cardiopheno.stats.outcomes import OutcomeDefinition, derive_outcomes, resolve_end_of_followup
from cardiopheno.stats.phecodes import load_phecode_map, map_diagnoses
from cardiopheno.summary import records_summary

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TODAY = pd.Timestamp("2026-12-01")


# ------------------------------------------------------------------ 1. frame interval units
def _cine_file(path, interval, unit, frames=50, shape=(8, 8, 2)):
    """A tiny 4D NIfTI whose pixdim[4] is ``interval`` in the header time unit ``unit``."""
    img = nib.Nifti1Image(np.ones((*shape, frames), np.float32), np.eye(4))
    img.header.set_zooms((1.8, 1.8, 8.0, interval))
    img.header.set_xyzt_units("mm", unit)
    nib.save(img, path)
    return path


@pytest.mark.parametrize(
    ("interval", "unit", "ms", "source"),
    [
        (0.01734, "unknown", 17.34, "inferred sec"),  # UK Biobank: seconds, unit not set
        (34.5, "unknown", 34.5, "inferred msec"),  # a scanner writing ms without the unit
        (0.03, "sec", 30.0, "header sec"),
        (30.0, "msec", 30.0, "header msec"),
        (30000.0, "usec", 30.0, "header usec"),
        (1.0, "unknown", None, "none"),  # neither 1 ms nor 1 s is a cardiac frame interval
    ],
)
def test_frame_interval_unit_read_or_inferred(tmp_path, interval, unit, ms, source):
    path = _cine_file(tmp_path / "sa.nii.gz", interval, unit)
    cine = load_cine(path)
    assert cine.frame_interval_source == source
    assert read_frame_interval(path) == (cine.frame_interval_ms, source)
    if ms is None:
        assert cine.frame_interval_ms is None
    else:
        assert cine.frame_interval_ms == pytest.approx(ms, rel=1e-5)


def test_uk_biobank_header_gives_a_physiological_heart_rate(tmp_path):
    labels = make_phantom(shape_xy=(48, 48), n_slices=6, n_frames=50, spacing=(1.8, 1.8, 8.0))
    seg = nib.Nifti1Image(labels.labels, np.diag([1.8, 1.8, 8.0, 1.0]))
    seg.header.set_zooms((1.8, 1.8, 8.0, 0.01734))  # as UK Biobank writes it, unit "unknown"
    nib.save(seg, tmp_path / "seg.nii.gz")
    ctx = context_from_files(tmp_path / "seg.nii.gz")
    assert ctx.heart_rate_bpm == pytest.approx(60000 / (50 * 17.34), rel=1e-4)  # 69 bpm


def test_qc_flags_a_heart_rate_outside_the_configured_range():
    phantom = make_phantom(shape_xy=(72, 72), n_slices=10, n_frames=20, spacing=(1.8, 1.8, 8.0))
    data = phantom_image(phantom.labels).astype(np.float32)
    aff = np.diag([1.8, 1.8, 8.0, 1.0])
    ok = {r.name: r for r in check_image(Cine(data, aff, (1.8, 1.8, 8.0), 30.0), QCThresholds())}
    assert ok["img_frames"].passed  # 100 bpm
    bad = Cine(data, aff, (1.8, 1.8, 8.0), 0.01734)  # seconds taken for ms: 173,000 bpm
    res = {r.name: r for r in check_image(bad, QCThresholds())}
    assert res["img_frames"].passed is False
    assert "heart rate" in res["img_frames"].reason and "[30, 200]" in res["img_frames"].reason
    tight = QCThresholds.from_config({"image": {"heart_rate_bpm": [30, 90]}})
    assert not {r.name: r for r in check_image(Cine(data, aff, (1.8,) * 2 + (8.0,), 30.0), tight)}[
        "img_frames"
    ].passed
    unknown = Cine(data, aff, (1.8, 1.8, 8.0), None)  # no timing: nothing to judge
    assert {r.name: r for r in check_image(unknown, QCThresholds())}["img_frames"].passed


# ------------------------------------------------------------------ 2-3. eids as file names
@pytest.fixture
def image_dir(tmp_path):
    (tmp_path / "sa.nii.gz").write_bytes(b"x")
    return tmp_path


def _manifest(folder, eids):
    path = folder / "manifest.csv"
    pd.DataFrame({"eid": eids, "sa": ["sa.nii.gz"] * len(eids)}).to_csv(path, index=False)
    return path


def test_hostile_eids_are_refused_in_one_error(image_dir):
    hostile = ["../../../../tmp/x", "a/b", "a\\b", "..", ".", "x\x1by", "tab\tid"]
    with pytest.raises(ManifestError) as err:
        load_manifest(_manifest(image_dir, [*hostile, "ünï€", "1000001"]))
    (problem,) = [p for p in err.value.problems if "not a single file name" in p]
    for eid in hostile:
        assert repr(eid) in problem
    assert "ünï€" not in problem and "1000001" not in problem
    assert eid_problem("x\x00y") and eid_problem("\u200bid")  # NUL (Parquet), zero-width space


def test_eids_with_surrounding_whitespace_are_read_stripped(image_dir):
    """Every reader strips them (cardiopheno.io.eids), so " 1" matches the covariates' "1"."""
    assert load_manifest(_manifest(image_dir, [" 1", "2 "]))["eid"].tolist() == ["1", "2"]


def test_unicode_eid_is_accepted(image_dir):
    assert load_manifest(_manifest(image_dir, ["ünï€", "1000001"]))["eid"].tolist() == [
        "ünï€",
        "1000001",
    ]


@pytest.mark.parametrize(
    ("eids", "expected"),
    [
        (["1000002", "./1000002"], "not a single file name"),  # would share results/.../1000002
        (["Abc", "abc"], "differ only by letter case"),  # case-insensitive filesystems
        (["\u00fc", "u\u0308"], "Unicode normalisation"),  # ü composed and decomposed
    ],
)
def test_two_eids_never_share_an_output_path(image_dir, eids, expected):
    with pytest.raises(ManifestError, match=expected):
        load_manifest(_manifest(image_dir, eids))


# ------------------------------------------------------------------ 4 and 10. config values
def _schema_validate(section: str, cfg: dict) -> dict:
    validate(cfg, str(ROOT / f"workflow/schemas/config.{section}.schema.yaml"), set_default=True)
    return cfg


def _demo_config() -> dict:
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for section in list(config):
        _schema_validate(section, config[section])
    return config


def test_end_of_followup_must_be_a_date():
    with pytest.raises(Exception, match="does not match"):
        _schema_validate("survival", {"end_of_followup": "not-a-date"})
    config = _demo_config()
    config["survival"]["end_of_followup"] = "2023-02-30"  # the right shape, not a date
    with pytest.raises(ConfigError, match="survival.end_of_followup"):
        check_config(config)
    config["survival"]["end_of_followup"] = "2022-10-31"
    check_config(config)


def test_unknown_idp_and_inverted_qc_range_are_named():
    config = _demo_config()
    check_config(config)  # the demo config is fine
    config["association"]["idps"] = ["LVEDV", "LVEDVV"]
    config["qc"]["image"]["frames"] = [120, 8]
    config["qc"]["phenotype"]["ranges"]["LVEF"] = [85, 10]
    config["qc"]["image"]["min_in_plane"] = 2000
    with pytest.raises(ConfigError) as err:
        check_config(config)
    text = str(err.value)
    assert "association.idps: LVEDVV" in text and "LVEDV," not in text
    assert "qc.image.frames: minimum 120 is above maximum 8" in text
    assert "qc.phenotype.ranges.LVEF: minimum 85" in text
    assert "qc.image.min_in_plane (2000) is above qc.image.max_in_plane" in text


# ------------------------------------------------------------------ 5-6. covariates
def _covariates(**columns):
    base = {
        "eid": ["1", "2", "3", "4"],
        "age": [50, 60, 70, 55],
        "sex": [0, 1, 1, 0],
        "height_cm": [170.0, 180, 165, 160],
        "weight_kg": [70.0, 80, 60, 55],
        "imaging_date": ["2015-01-01", "2016-05-02", "2017-03-04", "2018-01-01"],
    }
    return pd.DataFrame({**base, **columns})


COLUMNS = ["age", "sex", "imaging_date", "bsa_m2"]


@pytest.mark.parametrize(
    "codes",
    [["M", "F", "m", "f"], ["male", "Female", "MALE", "female"], ["1", "0", "1.0", "0"],
     ["M", "female", None, "F"]],
)  # fmt: skip
def test_common_sex_codings_are_accepted_and_normalised(codes):
    check_covariates(_covariates(sex=codes), "cov.csv", COLUMNS, TODAY)
    got = sex_codes(pd.Series(codes)).tolist()
    expected = [
        {"m": 1.0, "male": 1.0, "1": 1.0, "1.0": 1.0, "f": 0.0, "female": 0.0, "0": 0.0}.get(
            str(c).lower(), np.nan
        )
        for c in codes
    ]
    np.testing.assert_array_equal(got, expected)


def test_sex_coded_m_f_reaches_the_analysis_as_0_1():
    pheno = pd.DataFrame({"eid": ["1", "2", "3", "4"], "LVEDV": [150.0, 170, 160, 140]})
    frame = analysis_frame(pheno, None, _covariates(sex=["F", "M", "M", "F"]))
    assert frame["sex"].tolist() == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("sex", [0, 1, 2, 0], "column sex: values that are not a sex code (0/1, M/F, male/female): 2 (line 4)"),
        ("sex", ["1", "M", "0", "F"], "column sex: mixes numeric (0/1) and letter"),
        ("sex", ["U", "M", "F", "X"], "'U' (line 2)"),
        ("age", [-5, 60, 500, 55], "column age: ages outside [0, 120] years: -5 (line 2), 500 (line 4)"),
        ("age", ["fifty", 60, 70, 55], "column age: not numbers: 'fifty' (line 2)"),
        ("imaging_date", ["2015-01-01", "2099-01-01", "2017-03-04", "x"], "after the run date 2026-12-01: '2099-01-01' (line 3)"),
        ("imaging_date", ["2015-01-01", "2099-01-01", "2017-03-04", "x"], "not dates: 'x' (line 5)"),
        ("sex", [None, None, None, None], "column sex: no values at all"),
    ],
)  # fmt: skip
def test_bad_covariates_are_named_with_values_and_lines(column, values, expected):
    with pytest.raises(CovariatesError) as err:
        check_covariates(_covariates(**{column: values}), "cohort/cov.csv", COLUMNS, TODAY)
    assert "cohort/cov.csv" in str(err.value)
    assert expected in str(err.value)


def test_absent_covariate_columns_are_named_in_one_error():
    cov = _covariates().drop(columns=["height_cm", "imaging_date"])
    with pytest.raises(CovariatesError) as err:
        check_covariates(cov, "cov.csv", [*COLUMNS, "sbp"], TODAY)
    assert err.value.problems == [
        "column imaging_date: absent",
        "column bsa_m2: absent (nor height_cm and weight_kg to derive it from)",
        "column sbp: absent",
    ]


def _records(dates, codes=None, eids=None):
    n = len(dates)
    return pd.DataFrame(
        {"eid": eids or [str(i) for i in range(n)], "icd10": codes or ["I50"] * n, "date": dates}
    )


def test_one_stray_record_never_sets_the_end_of_followup():
    rng = np.random.default_rng(0)
    days = rng.integers(0, 12 * 365, 200)
    dates = [
        (pd.Timestamp("2010-01-01") + pd.Timedelta(days=int(d))).date().isoformat() for d in days
    ]
    latest = max(dates)
    for stray in ("2199-01-01", "2025-06-01"):  # in the future; far after the rest
        diag = _records([*dates, stray])
        end = resolve_end_of_followup(diag, _records([]), today=TODAY)
        assert f"{end.date:%Y-%m-%d}" == latest, stray
        assert end.ignored == (f"{stray} (diagnoses, eid 200)",)
    configured = resolve_end_of_followup(diag, _records([]), "2020-01-01", TODAY)
    assert f"{configured.date:%Y-%m-%d}" == "2020-01-01" and "configured" in configured.rule


def test_survival_follow_up_ignores_a_diagnosis_dated_2199():
    subjects = pd.DataFrame({"eid": ["1", "2"], "imaging_date": ["2015-01-01", "2015-01-01"]})
    diag = _records(["2018-01-01", "2199-01-01"], ["I50", "I48"], ["1", "2"])
    deaths = _records(["2020-06-30"], ["C34"], ["3"])
    out = derive_outcomes(
        subjects, diag, deaths, [OutcomeDefinition("af", ("I48",), ("diagnoses",))]
    ).set_index("eid")
    assert out.loc["2", "status"] == "censored"
    assert out.loc["2", "censor_date"] == pd.Timestamp("2020-06-30")
    assert out.loc["2", "time_years"] < 6  # not 183 years


# ------------------------------------------------------------------ 7. malformed ICD-10 codes
def test_icd10_codes_of_the_wrong_shape_are_left_out_not_reinterpreted():
    codes = pd.Series(["I50.0", "i500", "E11", "A09X", "XYZ", "12345", "I50..0", "", None])
    got = icd10_codes(codes).tolist()
    assert got[:4] == ["I500", "I500", "E11", "A09"]
    assert all(pd.isna(v) for v in got[4:])


def test_malformed_codes_and_dates_are_counted_by_kind_with_examples(caplog):
    diag = pd.DataFrame(
        {
            "eid": ["1", "2", "3", "4", "5", "6", "7"],
            "icd10": ["XYZ", "12345", "I50..0", "", "I50", "I21", "I48"],
            "date": ["2015-01-01"] * 4 + ["notadate", "2199-01-01", "2016-01-01"],
        }
    )
    deaths = pd.DataFrame({"eid": ["8"], "icd10": ["I21"], "date": ["31/02/2020x"]})
    with caplog.at_level(logging.WARNING):
        table = records_summary(diag, deaths, today=TODAY)
    issues = table.set_index(["table", "issue"])
    assert issues.loc[("diagnoses", "malformed ICD-10 code"), "n"] == 3
    assert "'12345' (eid 2)" in issues.loc[("diagnoses", "malformed ICD-10 code"), "examples"]
    assert issues.loc[("diagnoses", "empty ICD-10 code"), "n"] == 1
    assert issues.loc[("diagnoses", "unreadable date"), "n"] == 1
    assert issues.loc[("diagnoses", "date after the run date"), "n"] == 1
    assert issues.loc[("deaths", "unreadable date"), "n"] == 1
    end = issues.loc[("survival", "end of follow-up"), "examples"]
    assert end.startswith("2016-01-01: derived") and "2199-01-01 (diagnoses, eid 6)" in end
    assert "malformed ICD-10 code" in caplog.text
    assert set(record_issues(diag.iloc[4:5], "d", TODAY)["issue"]) == {"unreadable date"}


def test_phecode_mapping_never_shows_12345_as_123_45(caplog):
    diag = pd.DataFrame(
        {"eid": ["1", "2"], "icd10": ["12345", "I50.0"], "date": ["2015-01-01"] * 2}
    )
    with caplog.at_level(logging.INFO):
        counts = map_diagnoses(diag, load_phecode_map())
    assert set(counts["eid"]) == {"2"}
    assert "123.45" not in caplog.text and "'12345' (eid 1)" in caplog.text


# ------------------------------------------------------------------ 8. no absolute paths
def test_paths_in_reasons_are_relative_to_the_manifest_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "home" / "jane.doe" / "cohort"
    path = root / "1000001" / "sa.nii.gz"
    assert display_path(path, root) == "1000001/sa.nii.gz"
    assert display_path("/elsewhere/john.smith/sa.nii.gz", root) == "sa.nii.gz"
    text = f"{path}: cannot read image; seg {root}/1000001/seg.nii.gz missing"
    assert scrub_paths(text, [path], root) == (
        "1000001/sa.nii.gz: cannot read image; seg 1000001/seg.nii.gz missing"
    )


def test_qc_table_reasons_carry_no_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cohort = tmp_path / "data" / "jane.doe"
    cohort.mkdir(parents=True)
    (cohort / "sa.nii.gz").write_bytes(b"corrupt")
    pd.DataFrame({"eid": ["1"], "sa": ["sa.nii.gz"]}).to_csv(cohort / "m.csv", index=False)
    seg = tmp_path / "seg.parquet"
    pd.DataFrame({"eid": ["1"], "seg_sa": [str(cohort / "gone.nii.gz")], "ok": [True],
                  "reason": [""]}).to_parquet(seg)  # fmt: skip
    config = {"cohort": {"source": "manifest", "manifest": str(cohort / "m.csv")}}
    qc = qc_batch(seg, cohort / "m.csv", None, tmp_path / "qc.parquet", tmp_path / "mont",
                  QCThresholds(), config=config)  # fmt: skip
    reason = qc.loc[0, "qc_reasons"]
    assert "sa.nii.gz: cannot read image" in reason and "gone.nii.gz" in reason
    assert str(tmp_path) not in reason and "jane.doe" not in reason


# ------------------------------------------------------------------ 9. infinite voxels
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinite_voxels_refuse_the_image_alike(rng, bad):
    data = rng.normal(100, 10, (4, 40, 40)).astype(np.float32)
    data[1, 5, 5] = bad
    with pytest.raises(ValueError, match=r"1 non-finite voxels \(NaN or infinite\)"):
        SlicePipeline(PreprocessConfig(roi=48, crop=32)).preprocess(data, (1.8, 1.8))


# ------------------------------------------------------------------ start-up (dry run)
def _dry_run(tmp_path, config: dict) -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, allow_unicode=True))
    return subprocess.run(
        [str(SNAKEMAKE), "-n", "--cores", "1", "--configfile", str(cfg), "-d",
         str(tmp_path / "w"), "-s", str(ROOT / "Snakefile")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, timeout=180,
    )  # fmt: skip


def _user_cohort(tmp_path, covariates: pd.DataFrame) -> dict:
    aff = np.diag([1.8, 1.8, 8.0, 1.0])
    for eid in covariates["eid"]:
        save_nifti(tmp_path / f"{eid}.nii.gz", np.ones((8, 8, 2, 4), np.float32), aff)
    pd.DataFrame(
        {"eid": covariates["eid"], "sa": [f"{e}.nii.gz" for e in covariates["eid"]]}
    ).to_csv(tmp_path / "manifest.csv", index=False)
    covariates.to_csv(tmp_path / "covariates.csv", index=False)
    last = str(covariates["eid"].iloc[-1])  # a subject of the manifest (the door checks)
    _records(["2018-01-01"], eids=[last]).to_csv(tmp_path / "diagnoses.csv", index=False)
    _records([], [], []).to_csv(tmp_path / "deaths.csv", index=False)
    tables = {
        k: str(tmp_path / f"{k}.csv") for k in ("manifest", "covariates", "diagnoses", "deaths")
    }
    return {"cohort": {"source": "manifest", **tables}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"survival": {"end_of_followup": "not-a-date"}}, ["['survival']['end_of_followup']"]),
        ({"association": {"idps": ["LVEDVV"]}}, ["association.idps: LVEDVV"]),
        (
            {"qc": {"image": {"slices": [40, 4]}}},
            ["qc.image.slices: minimum 40 is above maximum 4"],
        ),
    ],
)
def test_bad_config_values_stop_the_dry_run_naming_the_key(tmp_path, change, expected):
    config = {"cohort": {"source": "synthetic"}, **change}
    res = _dry_run(tmp_path, config)
    assert res.returncode != 0
    for text in expected:
        assert text in res.stdout, res.stdout[-3000:]


def test_bad_covariates_stop_the_dry_run_before_any_job(tmp_path):
    cov = _covariates(sex=["M", "F", "2", "F"], age=[50, -5, 70, 500])
    res = _dry_run(tmp_path, _user_cohort(tmp_path, cov))
    assert res.returncode != 0
    assert "cohort has 2 problem(s)" in res.stdout, res.stdout[-3000:]
    assert "covariates.csv: column sex: values that are not a sex code" in res.stdout
    assert "-5 (line 3), 500 (line 5)" in res.stdout


def test_unicode_eid_plans_and_m_f_sex_passes_the_start_up_checks(tmp_path):
    cov = _covariates(eid=["ünï€", "2", "3", "4"], sex=["M", "F", "m", "female"])
    res = _dry_run(tmp_path, _user_cohort(tmp_path, cov))
    assert res.returncode == 0, res.stdout[-3000:]
    plan = pd.read_csv(tmp_path / "w/results/batches/plan.csv", dtype=str)
    assert "ünï€" in set(plan["eid"])


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> tuple[Path, dict]:
    """The whole workflow on a 6-subject synthetic cohort made hostile the way real ones are: a
    unicode eid, a UK Biobank header (seconds, unit unknown), an infinite voxel, sex coded M/F,
    malformed ICD-10 codes and dates and a diagnosis dated 2199, in a folder named after a person."""
    work = tmp_path_factory.mktemp("hostile")
    cohort = work / "home" / "jane.doe" / "cohort"
    res = subprocess.run(
        [str(SNAKEMAKE.with_name("cardiopheno")), "synth", "--n", "6", "--seed", "3",
         "--fault-fraction", "0", "--out", str(cohort)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    tables = {k: pd.read_csv(cohort / f"{k}.csv", dtype={"eid": str}) for k in
              ("manifest", "covariates", "diagnoses", "deaths")}  # fmt: skip
    eids = tables["manifest"]["eid"].tolist()
    rename = {eids[0]: "ünï€"}
    for table in tables.values():
        table["eid"] = table["eid"].replace(rename)
    ukbb = nib.load(cohort / tables["manifest"].loc[1, "sa"])
    interval_ms = float(ukbb.header.get_zooms()[3])
    data = np.asanyarray(ukbb.dataobj).astype(np.float32)
    img = nib.Nifti1Image(data, ukbb.affine, header=ukbb.header.copy())
    img.header.set_zooms((*ukbb.header.get_zooms()[:3], interval_ms / 1000.0))
    img.header.set_xyzt_units("mm", "unknown")
    nib.save(img, cohort / tables["manifest"].loc[1, "sa"])
    inf = nib.load(cohort / tables["manifest"].loc[2, "sa"])
    data = np.asanyarray(inf.dataobj).astype(np.float32)
    data[0, 0, 0, 0] = np.inf
    save_nifti(cohort / tables["manifest"].loc[2, "sa"], data, inf.affine, inf.header.get_zooms())
    tables["covariates"]["sex"] = tables["covariates"]["sex"].map({0: "F", 1: "M"})
    bad = pd.DataFrame({"eid": [eids[3]] * 6, "icd10": ["XYZ", "12345", "I50..0", "", "I21", "I48"],
                        "date": ["2015-01-01"] * 4 + ["notadate", "2199-01-01"]})  # fmt: skip
    tables["diagnoses"] = pd.concat([tables["diagnoses"], bad], ignore_index=True)
    for name, table in tables.items():
        table.to_csv(cohort / f"{name}.csv", index=False)
    config = {
        "cohort": {"source": "manifest", **{k: str(cohort / f"{k}.csv") for k in tables}},
        "batching": {"batch_size": 3},
        # the hostile inputs are the short axis's and the tables': the other views have their
        # own end-to-end test (test_workflow_e2e), and the atrial and aortic phenotypes here
        # become NaN with a reason
        "segmentation": {"views": []},
    }
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, allow_unicode=True))
    res = subprocess.run(
        [str(SNAKEMAKE), "--workflow-profile", str(ROOT / "workflow/profiles/default"),
         "--cores", "2", "--configfile", str(cfg), "-d", str(work / "run"), "-s",
         str(ROOT / "Snakefile")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-6000:]
    return work / "run" / "results", {"ukbb": eids[1], "inf": eids[2], "ms": interval_ms}


@pytest.mark.slow
def test_hostile_cohort_runs_end_to_end(hostile_run):
    results, which = hostile_run
    segment = pd.concat([read_table(p) for p in sorted((results / "segment").glob("b*.parquet"))])
    segment = segment.set_index("eid")
    # the unicode eid is segmented, phenotyped and written where it belongs
    assert segment.loc["ünï€", "ok"]
    seg_path = Path(segment.loc["ünï€", "seg_sa"])
    assert seg_path.is_file() and seg_path.parent.name == "ünï€"
    assert seg_path.parent.parent.parent == results / "segment"
    # the UK Biobank header: interval inferred in seconds, heart rate as with the ms header
    ukbb = segment.loc[which["ukbb"]]
    assert ukbb["frame_interval_source"] == "inferred sec"
    assert ukbb["frame_interval_ms"] == pytest.approx(which["ms"], rel=1e-4)
    pheno = read_table(results / "phenotypes.parquet").set_index("eid")
    assert 30 <= pheno.loc[which["ukbb"], "HR"] <= 200
    assert segment.loc["ünï€", "frame_interval_source"] == "header msec"
    # the infinite voxel refuses the image, as a NaN one does
    assert not segment.loc[which["inf"], "ok"]
    assert "non-finite voxels (NaN or infinite)" in segment.loc[which["inf"], "reason"]
    # no absolute path (nor the person's name in it) in any reason
    qc = read_table(results / "qc.parquet")
    counts = (results / "run_summary" / "counts.csv").read_text()
    texts = [*segment["reason"], *qc["qc_reasons"], *pheno["phenotypes_reason"], counts]
    for text in texts:
        assert "jane.doe" not in text and "/home/" not in text, text
    # sex coded M/F reached the statistics; malformed records counted; 2199 ignored
    assert (results / "association" / "associations.parquet").is_file()
    assert (results / "survival" / "cox.parquet").is_file()
    records = pd.read_csv(results / "run_summary" / "records.csv").set_index(["table", "issue"])
    assert records.loc[("diagnoses", "malformed ICD-10 code"), "n"] == 3
    assert records.loc[("diagnoses", "unreadable date"), "n"] == 1
    end = records.loc[("survival", "end of follow-up"), "examples"]
    assert not end.startswith("2199") and "2199-01-01 (diagnoses" in end
    outcomes = read_table(results / "survival" / "outcomes.parquet")
    assert outcomes["time_years"].max() < 30


def test_missing_covariate_values_are_allowed_with_a_warning_naming_the_lines(caplog):
    with caplog.at_level(logging.WARNING):
        check_covariates(_covariates(age=[50, None, 70, None]), "cov.csv", COLUMNS, TODAY)
    assert "column age is empty on 2 of 4 rows (lines 3, 5)" in caplog.text
