"""Segmentation over views: provided label maps in the ukbb conventions, missing views, wrong
shapes, missing models, and a network trained for another view's labels."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cardiopheno.segment.infer import PassOptions, Segmenter, run_batch, segment_batch
from cardiopheno.segment.network import NetworkConfig, build_network, save_checkpoint
from cardiopheno.segment.transforms import PreprocessConfig
from cardiopheno.views import VIEWS, view_spec

TINY = NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1)
AFFINE = np.diag([1.8, 1.8, 6.0, 1.0])


def _write(path, data, dtype=np.int16):
    img = nib.Nifti1Image(np.asarray(data, dtype=dtype), AFFINE)
    img.header.set_zooms((1.8, 1.8, 6.0, 30.0)[: np.asarray(data).ndim])
    nib.save(img, path)
    return str(path)


@pytest.fixture(scope="module")
def la4_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "la4.pt"
    cfg = NetworkConfig(**{**TINY.to_dict(), "out_channels": VIEWS["la_4ch"].n_classes})
    save_checkpoint(path, build_network(cfg), cfg, PreprocessConfig(roi=48, crop=48))
    return path


def _cine(rng, shape=(40, 36, 1, 5)):
    return rng.integers(0, 500, size=shape)


def test_every_view_declares_a_consistent_label_map():
    for view in VIEWS.values():
        assert view.classes == tuple(range(1, view.n_classes))
        for column, lut in view.provided.items():
            assert max(lut) < view.n_classes, column
    assert VIEWS["la_4ch"].map_provided("seg_la_4ch", np.array([0, 1, 2])).tolist() == [0, 4, 5]
    with pytest.raises(ValueError, match="unknown view"):
        view_spec("la_3ch")


def test_file_names_leave_only_the_primary_view_unnamed(tmp_path):
    from cardiopheno.segment.training_sources import TrainingData, _generated_sources

    assert [v.file_suffix for v in VIEWS.values()] == ["", "_la_2ch", "_la_4ch", "_ao"]
    names = {
        view: _generated_sources(TrainingData(synthetic_cohort=str(tmp_path), view=view))[0][0]
        for view in ("sa", "la_4ch")
    }
    assert names == {"sa": "synthetic", "la_4ch": "synthetic_la_4ch"}


def test_a_network_for_the_wrong_view_is_refused(la4_checkpoint):
    with pytest.raises(ValueError, match="la_2ch view needs 2"):
        Segmenter(la4_checkpoint, device="cpu", view="la_2ch")


def test_four_chamber_batch_segments_maps_provided_labels_and_records_bad_input(
    tmp_path, la4_checkpoint, rng
):
    good = _write(tmp_path / "good.nii.gz", _cine(rng))
    stack = _write(tmp_path / "stack.nii.gz", _cine(rng, (40, 36, 3, 5)))  # a 3D stack
    atria = np.zeros((40, 36, 1, 5), np.uint8)
    atria[5:15, 5:15] = 1
    atria[20:30, 5:15] = 2
    prov_atria = _write(tmp_path / "seg_la_4ch.nii.gz", atria, np.uint8)
    bad = atria.copy()
    bad[0, 0] = 7
    prov_bad = _write(tmp_path / "seg4_bad.nii.gz", bad, np.uint8)
    manifest = pd.DataFrame(
        {
            "eid": ["model", "stack", "atria", "badlabel", "noview"],
            "sa": [good] * 5,
            "la_4ch": [good, stack, good, good, ""],
            "seg_la_4ch": ["", "", prov_atria, "", ""],
            "seg4_la_4ch": ["", "", "", prov_bad, ""],
        }
    )
    seg = Segmenter(la4_checkpoint, device="cpu", view="la_4ch", passes=PassOptions(tta=True))
    table = segment_batch(
        manifest, manifest["eid"], tmp_path / "out", tmp_path / "t.parquet", seg, num_workers=0
    ).set_index("eid")
    assert list(table.columns[:2]) == ["seg4_la_4ch", "source"]
    assert table.loc["model", "ok"]
    labels = nib.load(table.loc["model", "seg4_la_4ch"]).get_fdata()
    assert labels.shape == (40, 36, 1, 5) and labels.max() <= 5
    assert "tta_dice_ra" in table.columns
    assert not table.loc["stack", "ok"]
    assert "single-slice cine" in table.loc["stack", "reason"]
    assert table.loc["atria", "ok"] and table.loc["atria", "source"] == "provided"
    mapped = nib.load(table.loc["atria", "seg4_la_4ch"]).get_fdata()
    assert set(np.unique(mapped)) == {0, 4, 5}  # seg_la_4ch's 1 LA, 2 RA in seg4 labels
    assert not table.loc["badlabel", "ok"] and "[7]" in table.loc["badlabel", "reason"]
    assert table.loc["noview", "reason"] == "no la_4ch image in the manifest"


def test_a_view_without_a_model_is_recorded_for_every_subject(tmp_path, rng):
    image = _write(tmp_path / "ao.nii.gz", _cine(rng))
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"eid": ["1", "2"], "sa": [image] * 2, "ao": [image] * 2}).to_csv(
        manifest, index=False
    )
    table = run_batch(
        manifest,
        tmp_path / "out",
        tmp_path / "t.parquet",
        {"checkpoints": {"ao": str(tmp_path / "absent.pt")}},
        view="ao",
    )
    assert not table["ok"].any()
    assert table["reason"].str.startswith("no ao model").all()


def test_a_failed_dicom_conversion_of_a_view_is_its_reason_not_the_short_axis():
    from cardiopheno.segment.batch import job_rows

    conversion = pd.DataFrame(
        {
            "eid": ["1", "2"],
            "sa": ["", "/x/sa.nii.gz"],
            "ok": [False, True],
            "reason": ["1: short axis unreadable", ""],
            "la_4ch": ["/x/la_4ch.nii.gz", ""],
            "la_4ch_reason": ["", "2: no DICOM images in four"],
        }
    )
    rows = {r["eid"]: r for r in job_rows(conversion, ["1", "2"], VIEWS["la_4ch"])}
    assert rows["1"]["error"] == "" and rows["1"]["image"] == "/x/la_4ch.nii.gz"
    assert rows["2"]["error"] == "conversion: 2: no DICOM images in four"
    sa_rows = {r["eid"]: r for r in job_rows(conversion, ["1", "2"], VIEWS["sa"])}
    assert sa_rows["1"]["error"].startswith("conversion: 1: short axis")
