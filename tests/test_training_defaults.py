"""Training defaults are the dataclasses' (segment.train.TrainConfig, segment.training_sources.TrainingData): the
train-segmentation command's options and the segmentation.train config schema must agree."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from cardiopheno.segment.cli import register
from cardiopheno.segment.train import TrainConfig
from cardiopheno.segment.training_sources import TrainingData

SCHEMA = Path(__file__).resolve().parents[1] / "workflow/schemas/config.segmentation.schema.yaml"
# command option (argparse dest) -> the dataclass default it must equal
COMMAND = {
    "acdc_train": TrainingData.acdc_train,
    "acdc_val": TrainingData.acdc_val,
    "acdc_repeat": TrainingData.acdc_repeat,
    "acdc_es_repeat": TrainingData.acdc_es_repeat,
    "acdc_basal_es_repeat": TrainingData.acdc_basal_es_repeat,
    "synthetic_frames": TrainingData.synthetic_frames,
    "synthetic_aorta": TrainingData.synthetic_aorta,
    "synthetic_aorta_seed": TrainingData.synthetic_aorta_seed,
    "wholeheart_slices": TrainingData.wholeheart_slices,
    "epochs": TrainConfig.epochs,
    "batch_size": TrainConfig.batch_size,
    "lr": TrainConfig.learning_rate,
    "workers": TrainConfig.num_workers,
    "max_minutes": TrainConfig.max_minutes,
    "device": TrainConfig.device,
    "seed": TrainConfig.seed,
    "view": TrainConfig.view,
    "augment": TrainConfig.augment,
    "area_weight": TrainConfig.area_weight,
    "patch": TrainConfig.patch,
}
# segmentation.train key -> the dataclass default it must equal
SCHEMA_KEYS = {
    "acdc_train": TrainingData.acdc_train,
    "acdc_val": TrainingData.acdc_val,
    "epochs": TrainConfig.epochs,
    "max_minutes": TrainConfig.max_minutes,
    "batch_size": TrainConfig.batch_size,
    "learning_rate": TrainConfig.learning_rate,
    "val_fraction": TrainConfig.val_fraction,
    "workers": TrainConfig.num_workers,
    "seed": TrainConfig.seed,
    "device": TrainConfig.device,
    "augment": TrainConfig.augment,
}
# The one default that differs on purpose: the workflow trains on 4 frames per synthetic subject
# (ED, ES and 2 others), the command on TrainingData's 6.
WORKFLOW_SYNTHETIC_FRAMES = 4


def test_command_options_default_to_the_dataclasses():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = vars(parser.parse_args(["train-segmentation", "--out", "x"]))
    wrong = {k: (args[k], v) for k, v in COMMAND.items() if args[k] != v}
    assert not wrong, f"option default != dataclass default: {wrong}"


def test_config_schema_defaults_equal_the_dataclasses():
    train = yaml.safe_load(SCHEMA.read_text())["properties"]["train"]["properties"]
    wrong = {
        k: (train[k]["default"], v) for k, v in SCHEMA_KEYS.items() if train[k]["default"] != v
    }
    assert not wrong, f"schema default != dataclass default: {wrong}"
    assert train["synthetic_frames"]["default"] == WORKFLOW_SYNTHETIC_FRAMES
