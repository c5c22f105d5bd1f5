"""``cardiopheno phenotypes`` with the inputs a user brings: covariates the families read (central
pulse pressure for distensibility) and provided files in their manifest column's convention."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from cardiopheno.cli import main
from cardiopheno.io.nifti import save_nifti
from cardiopheno.io.tables import ColumnSpec, write_table
from cardiopheno.phenotypes._phantom import make_phantom
from cardiopheno.phenotypes.batch import phenotypes_batch

SA_ZOOMS = (2.0, 2.0, 8.0, 40.0)
LA_PX = 1.5


def disk(shape, centre, radius_px) -> np.ndarray:
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return (i - centre[0]) ** 2 + (j - centre[1]) ** 2 <= radius_px**2


def write_sa(path) -> None:
    p = make_phantom(shape_xy=(48, 48), n_slices=5, n_frames=10, spacing=SA_ZOOMS[:3])
    save_nifti(path, p.labels, np.diag([*SA_ZOOMS[:3], 1.0]), zooms=SA_ZOOMS)


def write_ao(path, n_frames: int = 10) -> None:
    """Ascending (1) and descending (2) aorta whose radii pulse over the cine."""
    labels = np.zeros((40, 40, 1, n_frames), np.uint8)
    for t in range(n_frames):
        swell = math.sin(math.pi * t / n_frames)
        labels[..., 0, t][disk((40, 40), (12, 12), 6 + 1.5 * swell)] = 1
        labels[..., 0, t][disk((40, 40), (28, 26), 5 + 0.8 * swell)] = 2
    save_nifti(path, labels, np.diag([1.6, 1.6, 8.0, 1.0]), zooms=(1.6, 1.6, 8.0, 30.0))


def run_cli(tmp_path, *args: str) -> dict:
    out = tmp_path / "cli.json"
    assert main(["phenotypes", *args, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_distensibility_from_the_cli_equals_the_workflow_batch(tmp_path):
    """The workflow's phenotypes_batch rule and the one-subject command, on the same files and
    the same central pulse pressure, give the same distensibility."""
    write_sa(tmp_path / "seg_sa.nii.gz")
    write_ao(tmp_path / "seg_ao.nii.gz")
    status = {"eid": ["1001"], "ok": [True], "reason": [""]}
    write_table(
        pd.DataFrame({**status, "seg_sa": [str(tmp_path / "seg_sa.nii.gz")]}),
        tmp_path / "segment.parquet",
    )
    write_table(
        pd.DataFrame({**status, "seg_ao": [str(tmp_path / "seg_ao.nii.gz")]}),
        tmp_path / "segment_ao.parquet",
        columns={"eid": ColumnSpec("", "subject")},
        extra={"view": "ao"},
    )
    pd.DataFrame({"eid": ["1001"], "central_pp": [47.0]}).to_csv(tmp_path / "cov.csv", index=False)
    families = ["lv_function", "aortic_function"]
    batch = phenotypes_batch(
        tmp_path / "segment.parquet",
        tmp_path / "batch.parquet",
        tmp_path / "cov.csv",
        families=families,
        config={"phenotypes": {}},
        view_tables=[tmp_path / "segment_ao.parquet"],
    ).set_index("eid")
    seg, ao = str(tmp_path / "seg_sa.nii.gz"), str(tmp_path / "seg_ao.nii.gz")
    doc = run_cli(tmp_path, "--seg", seg, "--view", "ao", ao, "--families", *families,
                  "--central-pp", "47")  # fmt: skip
    for name in ("AAo_distensibility", "DAo_distensibility", "AAo_max_area", "DAo_min_area"):
        assert doc["values"][name] == batch.at["1001", name]
    assert doc["values"]["AAo_distensibility"] > 0

    # without the pressure: NaN, and the notes say why and which option gives it
    doc = run_cli(tmp_path, "--seg", seg, "--view", "ao", ao, "--families", *families)
    assert doc["values"]["AAo_distensibility"] is None
    line = next(n for n in doc["notes"] if n.startswith("AAo_distensibility"))
    assert "no central pulse pressure" in line and "--central-pp" in line


def write_long_axis(tmp_path) -> dict[str, str]:
    """A 2-chamber LA, and the 4-chamber view twice: in its own five labels (seg4_la_4ch) and
    atria only (seg_la_4ch: 1 LA, 2 RA, as ukbb_cardiac writes it)."""
    shape, n = (64, 64), 4
    two = np.zeros((*shape, 1, n), np.uint8)
    four = np.zeros((*shape, 1, n), np.uint8)
    for t in range(n):
        r = 1 - 0.08 * t
        two[..., 0, t][disk(shape, (40, 30), 12 * r)] = 1
        frame = four[..., 0, t]
        frame[disk(shape, (18, 20), 10)] = 2  # LV myocardium
        frame[disk(shape, (18, 20), 7)] = 1  # LV cavity
        frame[disk(shape, (18, 44), 8)] = 3  # RV
        frame[disk(shape, (44, 20), 11 * r)] = 4  # LA
        frame[disk(shape, (44, 46), 10 * r)] = 5  # RA
    atria = np.select([four == 4, four == 5], [1, 2], 0).astype(np.uint8)
    paths = {}
    for name, data in (("la_2ch", two), ("seg4_la_4ch", four), ("seg_la_4ch", atria)):
        paths[name] = str(tmp_path / f"{name}.nii.gz")
        affine = np.diag([LA_PX, LA_PX, 6.0, 1.0])
        save_nifti(paths[name], data, affine, zooms=(LA_PX, LA_PX, 6.0, 40.0))
    return paths


ATRIA = ("LAV_max", "LAV_min", "LAEF", "RAV_max", "RAV_min", "RAEF")


def test_an_atria_only_file_given_by_its_column_gives_the_right_atria(tmp_path):
    write_sa(tmp_path / "seg_sa.nii.gz")
    paths = write_long_axis(tmp_path)
    base = ["--seg", str(tmp_path / "seg_sa.nii.gz"), "--families", "atrial_function",
            "--view", "la_2ch", paths["la_2ch"]]  # fmt: skip
    own = run_cli(tmp_path, *base, "--view", "la_4ch", paths["seg4_la_4ch"])
    atria = run_cli(tmp_path, *base, "--view", "seg_la_4ch", paths["seg_la_4ch"])
    for name in ATRIA:
        assert own["values"][name] is not None
        assert atria["values"][name] == pytest.approx(own["values"][name], rel=1e-12)

    # read in the five-label convention, its 1 and 2 would be LV and myocardium: no atria, and
    # the notes say which label is missing from the file
    wrong = run_cli(tmp_path, *base, "--view", "la_4ch", paths["seg_la_4ch"])
    assert wrong["values"]["RAV_max"] is None
    assert any("label 5 absent from every frame of la_4ch (labels: 1, 2)" in n
               for n in wrong["notes"])  # fmt: skip


def test_a_view_name_that_is_neither_a_view_nor_a_column_is_named(tmp_path, caplog):
    write_sa(tmp_path / "seg_sa.nii.gz")
    code = main(["phenotypes", "--seg", str(tmp_path / "seg_sa.nii.gz"),
                 "--view", "seg_la_3ch", str(tmp_path / "x.nii.gz")])  # fmt: skip
    assert code == 1
    assert "--view seg_la_3ch: not a view" in caplog.text
