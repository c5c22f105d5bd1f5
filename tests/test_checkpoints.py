"""Checkpoints are read as data: a crafted file that would run code when unpickled is refused at
every entry point that takes a checkpoint, and nothing in it runs; our own files load as data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cardiopheno.cli import main as cli_main
from cardiopheno.segment.checkpoints import CheckpointError, plain, read_checkpoint
from cardiopheno.segment.data import SliceCache
from cardiopheno.segment.infer import Segmenter, run_batch
from cardiopheno.segment.network import (
    NetworkConfig,
    build_network,
    load_checkpoint,
    save_checkpoint,
)
from cardiopheno.segment.train import TrainConfig, train
from cardiopheno.segment.transforms import PreprocessConfig
from cardiopheno.views import VIEWS

TINY = NetworkConfig(channels=(8, 16), strides=(2,), num_res_units=1)
MODELS = Path(__file__).resolve().parents[1] / "src" / "cardiopheno" / "models"


class WritesMarker:
    """Unpickling this calls ``exec`` on code that creates the marker file (a stand-in for the
    shell command of a hostile checkpoint)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.fixture
def crafted(tmp_path) -> tuple[Path, Path]:
    """(a checkpoint that looks like ours but carries a payload, the marker the payload makes)."""
    marker = tmp_path / "payload_ran"
    path = tmp_path / "shared_weights.pt"
    blob = {
        "state_dict": build_network(TINY).state_dict(),
        "network": TINY.to_dict(),
        "preprocess": PreprocessConfig(roi=48, crop=32).to_dict(),
        "metadata": WritesMarker(marker),
    }
    torch.save(blob, path)
    return path, marker


def test_the_crafted_file_does_run_code_when_unpickled_in_full(crafted):
    path, marker = crafted
    torch.load(path, map_location="cpu", weights_only=False)  # what the code did before
    assert marker.is_file()


def test_read_checkpoint_refuses_it_naming_the_file_and_the_global(crafted):
    path, marker = crafted
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    text = str(err.value)
    assert str(path) in text and "refused" in text and "exec" in text
    assert "Traceback" not in text and "\n" not in text
    assert not marker.exists()


def test_inference_refuses_it(crafted):
    path, marker = crafted
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused"):
        Segmenter(path, device="cpu")
    assert not marker.exists()


def test_segment_command_refuses_it(crafted, tmp_path, capsys):
    path, marker = crafted
    rc = cli_main(["segment", "--checkpoint", str(path), "--input", str(tmp_path / "sa.nii.gz"),
                   "--output", str(tmp_path / "seg.nii.gz"), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and str(path) in err and "refused" in err
    assert not marker.exists()


@pytest.mark.parametrize("view, key", [("sa", "checkpoint"), ("ao", "checkpoints")])
def test_workflow_segmentation_checkpoint_is_refused(crafted, tmp_path, view, key):
    """The segment rules' script calls run_batch with the config's ``segmentation`` section."""
    path, marker = crafted
    manifest = tmp_path / "b0000.csv"
    pd.DataFrame({"eid": ["1"], "sa": [str(tmp_path / "sa.nii.gz")]}).to_csv(manifest, index=False)
    settings = {"checkpoint": str(path)} if key == "checkpoint" else {key: {view: str(path)}}
    with pytest.raises(CheckpointError, match="refused"):
        run_batch(manifest, tmp_path / "seg", tmp_path / "seg.parquet", settings, view=view)
    assert not marker.exists()


def tiny_cache(n: int = 8, size: int = 32) -> SliceCache:
    labels = np.zeros((n, size, size), np.uint8)
    labels[:, 10:20, 10:20] = 1
    subjects = np.array([f"s{i // 2}" for i in range(n)])
    return SliceCache((labels * 200).astype(np.uint8), labels, subjects,
                      np.array([f"{s}_v" for s in subjects]), np.array(["test"] * n))  # fmt: skip


def test_training_initial_weights_are_refused(crafted, tmp_path):
    path, marker = crafted
    cfg = TrainConfig(epochs=1, batch_size=4, augment=False, network=TINY.to_dict(),
                      device="cpu", init_checkpoint=str(path))  # fmt: skip
    with pytest.raises(CheckpointError, match="refused"):
        train(tiny_cache(), tmp_path / "run", cfg, pre_cfg=PreprocessConfig(roi=32, crop=32))
    assert not marker.exists()


def test_train_command_init_is_refused_before_any_caching(crafted, tmp_path, capsys):
    path, marker = crafted
    rc = cli_main(["train-segmentation", "--out", str(tmp_path / "run"), "--init", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and str(path) in err and "refused" in err
    assert not (tmp_path / "run" / "cache").exists()
    assert not marker.exists()


def test_resuming_from_a_crafted_last_checkpoint_is_refused(crafted, tmp_path):
    path, marker = crafted
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(path.read_bytes())
    cfg = TrainConfig(epochs=1, batch_size=4, augment=False, network=TINY.to_dict(), device="cpu")
    with pytest.raises(CheckpointError, match="refused"):
        train(tiny_cache(), run, cfg, pre_cfg=PreprocessConfig(roi=32, crop=32))
    assert not marker.exists()


@pytest.mark.parametrize("name", sorted(spec.checkpoint for spec in VIEWS.values()))
def test_shipped_models_load_as_data(name):
    blob = read_checkpoint(MODELS / name)
    assert {"state_dict", "network", "preprocess"} <= set(blob)
    model, *_ = load_checkpoint(MODELS / name)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_our_training_checkpoints_load_as_data_with_paths_and_numpy_metadata(tmp_path):
    path = tmp_path / "ours.pt"
    meta = {"root": tmp_path, "sizes": np.array([1, 2]), "dice": np.float32(0.5), "t": (1, "a")}
    save_checkpoint(path, build_network(TINY), TINY, PreprocessConfig(roi=48, crop=32),
                    metadata=meta, optimizer={"param_groups": [{"betas": (0.9, 0.99)}]})  # fmt: skip
    blob = read_checkpoint(path)
    assert blob["metadata"] == {"root": str(tmp_path), "sizes": [1, 2], "dice": 0.5, "t": (1, "a")}


def test_a_checkpoint_that_is_not_a_dict_or_not_there_is_named(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match=r"list\.pt: not a cardiopheno checkpoint"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"absent\.pt: checkpoint not found"):
        read_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt: cannot load checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")


def test_plain_refuses_an_object_it_cannot_make_plain():
    with pytest.raises(TypeError, match="object"):
        plain({"x": object()})
