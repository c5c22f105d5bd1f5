"""Training steps, batch inference (bad input recorded, provided segmentations), CLI errors and
the shipped model on a synthetic subject."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.cli import main as cli_main
from cardiopheno.io.nifti import ImageReadError
from cardiopheno.io.tables import column_specs, file_metadata, read_table, write_table
from cardiopheno.segment.data import SliceCache
from cardiopheno.segment.infer import (
    ComputeOptions,
    PassOptions,
    Segmenter,
    run_batch,
    segment_batch,
)
from cardiopheno.segment.network import (
    DEFAULT_CHECKPOINT,
    CheckpointError,
    NetworkConfig,
    build_network,
    load_checkpoint,
    save_checkpoint,
)
from cardiopheno.segment.train import TrainConfig, train
from cardiopheno.segment.transforms import PreprocessConfig

TINY = NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1)


def phantom_slices(n: int, size: int, rng: np.random.Generator):
    """Slices with an LV (bright disc in a dark ring) and an RV (bright disc beside it)."""
    images = np.zeros((n, size, size), np.float32)
    labels = np.zeros((n, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cx, cy = size / 2 + rng.uniform(-4, 4, 2)
        r = rng.uniform(6, 9)
        d = np.hypot(xx - cx, yy - cy)
        drv = np.hypot(xx - cx - 2.2 * r, yy - cy)
        labels[i][drv < 1.3 * r] = RV_CAVITY
        labels[i][d < r + 3] = LV_MYOCARDIUM
        labels[i][d < r] = LV_CAVITY
        images[i] = np.choose(labels[i], [0.1, 0.9, 0.3, 0.8]) + rng.normal(0, 0.03, (size, size))
    return np.clip(images, 0, 1), labels


def cache_of(images, labels, subjects) -> SliceCache:
    n = len(images)
    return SliceCache(
        np.rint(images * 255).astype(np.uint8),
        labels,
        np.array(subjects),
        np.array([f"{s}_v" for s in subjects]),
        np.array(["test"] * n),
    )


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, build_network(TINY), TINY, PreprocessConfig(roi=48, crop=32))
    return path


def test_a_few_training_steps_lower_the_loss(tmp_path, rng):
    images, labels = phantom_slices(24, 48, rng)
    subjects = [f"s{i // 4}" for i in range(24)]
    cache = cache_of(images, labels, subjects)
    cfg = TrainConfig(epochs=6, batch_size=8, learning_rate=5e-3, augment=False,
                      network=TINY.to_dict(), device="cpu")  # fmt: skip
    torch.set_num_threads(1)
    result = train(cache, tmp_path, cfg, pre_cfg=PreprocessConfig(roi=48, crop=32), resume=False)
    losses = [h["loss"] for h in result["history"]]
    assert losses[-1] < 0.8 * losses[0]
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    # resuming continues after the last epoch rather than starting again
    cfg.epochs = 7
    resumed = train(cache, tmp_path, cfg, pre_cfg=PreprocessConfig(roi=48, crop=32))
    assert [h["epoch"] for h in resumed["history"]] == list(range(7))


def _write(path, data, zooms=(1.8, 1.8, 8.0, 30.0)):
    img = nib.Nifti1Image(data, np.diag([*zooms[:3], 1.0]))
    img.header.set_zooms(zooms[: data.ndim])
    nib.save(img, path)
    return path


def test_batch_records_an_unreadable_image_and_goes_on(tmp_path, tiny_checkpoint, rng):
    good = _write(tmp_path / "good.nii.gz", rng.normal(100, 10, (40, 40, 3, 4)).astype(np.float32))
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really a gzip")
    provided_img = _write(
        tmp_path / "p.nii.gz", rng.normal(100, 10, (40, 40, 3, 4)).astype(np.float32)
    )
    provided_labels = np.zeros((40, 40, 3, 4), np.uint8)
    provided_labels[10:20, 10:20] = 1
    provided_seg = _write(tmp_path / "p_seg.nii.gz", provided_labels)
    empty_seg = _write(tmp_path / "empty_seg.nii.gz", np.zeros((40, 40, 3, 4), np.uint8))
    one_frame = _write(tmp_path / "3d.nii.gz", rng.normal(100, 10, (40, 40, 3)).astype(np.float32))
    eids = ["1", "2", "3", "4", "5", "6"]
    manifest = pd.DataFrame(
        {
            "eid": eids,
            "sa": [
                str(good),
                str(bad),
                str(provided_img),
                str(tmp_path / "missing.nii.gz"),
                str(one_frame),
                str(provided_img),
            ],
            "seg_sa": ["", "", str(provided_seg), "", "", str(empty_seg)],
        }
    )
    seg = Segmenter(tiny_checkpoint, device="cpu", passes=PassOptions(tta=True))
    table_path = tmp_path / "b0000.parquet"
    out = segment_batch(manifest, eids, tmp_path / "seg", table_path, seg,
                        num_workers=1, progress=False)  # fmt: skip
    table = read_table(table_path).set_index("eid")
    assert table.loc["1", "ok"] and table.loc["1", "source"] == "model"
    assert nib.load(table.loc["1", "seg_sa"]).shape == (40, 40, 3, 4)
    assert not table.loc["2", "ok"] and "bad.nii.gz" in table.loc["2", "reason"]
    assert table.loc["3", "ok"] and table.loc["3", "source"] == "provided"
    assert np.isnan(table.loc["3", "tta_dice_lv"])
    assert np.isnan(table.loc["3", "LVEDV_sd"])  # a provided segmentation has no passes
    assert not table.loc["4", "ok"] and "missing.nii.gz" in table.loc["4", "reason"]
    # a one-frame (3D) scan is segmented with its own shape; QC's frame check flags it later
    assert table.loc["5", "ok"] and nib.load(table.loc["5", "seg_sa"]).shape == (40, 40, 3)
    # a provided segmentation is checked like any input: an empty one is recorded with why
    assert not table.loc["6", "ok"] and "labels nothing" in table.loc["6", "reason"]
    assert len(out) == 6
    assert column_specs(table_path)["seconds"].unit == "s"
    assert column_specs(table_path)["LVEF_sd"].unit == "%"
    meta = file_metadata(table_path)
    assert meta["model_sha256"] == seg.sha256
    assert (meta["precision"], meta["flip_ensemble"]) == ("float32", "1")  # CPU defaults


def test_batch_from_a_dicom_conversion_table_keeps_the_conversion_reason(
    tmp_path, tiny_checkpoint, rng
):
    good = _write(tmp_path / "good.nii.gz", rng.normal(100, 10, (40, 40, 3, 4)).astype(np.float32))
    status = pd.DataFrame(
        {
            "eid": ["1", "2"],
            "sa": [str(good), ""],
            "seg_sa": ["", ""],
            "source": ["dicom_zip", "dicom_folder"],
            "ok": [True, False],
            "reason": ["", "uneven slice spacing (a slice is missing)"],
            "frame_interval_source": ["trigger_time", ""],
        }
    )
    write_table(status, tmp_path / "convert.parquet")
    settings = {"checkpoint": str(tiny_checkpoint), "device": "cpu", "progress": False}
    run_batch(tmp_path / "convert.parquet", tmp_path / "seg", tmp_path / "b.parquet", settings)
    table = read_table(tmp_path / "b.parquet").set_index("eid")
    assert table.loc["1", "ok"]
    assert not table.loc["2", "ok"]
    assert table.loc["2", "reason"] == "conversion: uneven slice spacing (a slice is missing)"


def test_unreadable_input_gives_a_clear_error(tmp_path, tiny_checkpoint, capsys):
    bad = tmp_path / "broken.nii.gz"
    bad.write_text("not an image")
    with pytest.raises(ImageReadError, match="broken.nii.gz"):
        Segmenter(tiny_checkpoint, device="cpu").segment_file(bad, tmp_path / "out.nii.gz")
    rc = cli_main(["segment", "--input", str(bad), "--output", str(tmp_path / "o.nii.gz"),
                   "--checkpoint", str(tiny_checkpoint), "--device", "cpu"])  # fmt: skip
    assert rc == 2
    assert "broken.nii.gz" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_shipped_model_segments_a_synthetic_subject(tmp_path, precision):
    cohort = pytest.importorskip("cardiopheno.synth.cohort", reason="cardiopheno.synth not present")
    if not DEFAULT_CHECKPOINT.is_file():
        pytest.fail(f"shipped checkpoint missing: {DEFAULT_CHECKPOINT}")
    manifest = cohort.generate_cohort(tmp_path, 1, seed=3, fault_fraction=0.0, n_jobs=1)
    row = pd.read_csv(manifest, dtype={"eid": str}).iloc[0]
    # every 5th frame: the cycle's range of shapes at a fraction of the cost (bfloat16 is
    # emulated, several times slower, on CPUs without AMX)
    cine = nib.load(tmp_path / row["sa"])
    frames = slice(0, None, 5)
    cut = tmp_path / "sa_cut.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(cine.dataobj)[..., frames], cine.affine, cine.header), cut)
    seg = Segmenter(
        device="cpu",
        compute=ComputeOptions(precision=precision),
        passes=PassOptions(tta=False),
    )
    out = tmp_path / "seg.nii.gz"
    seg.segment_file(cut, out)
    pred = np.asarray(nib.load(out).dataobj)
    truth = np.asarray(nib.load(tmp_path / "truth" / "labels" / f"{row['eid']}.nii.gz").dataobj)
    truth = truth[..., frames]
    assert pred.shape == truth.shape
    for cls in (LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY):
        p, t = pred == cls, truth == cls
        assert 2 * (p & t).sum() / (p.sum() + t.sum()) > 0.9, f"class {cls}"
