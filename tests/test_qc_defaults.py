"""QC thresholds are defined once: the config schema's defaults (workflow/schemas/config.qc.schema.yaml)
are what the checks use when a key is left out, so the dataclasses' own defaults must agree."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from cardiopheno.qc.aorta import AortaQCThresholds
from cardiopheno.qc.checks import QCThresholds
from cardiopheno.qc.views import ViewQCThresholds

SCHEMA = Path(__file__).resolve().parents[1] / "workflow/schemas/config.qc.schema.yaml"
OWN_SECTIONS = ("aorta", "views")  # subsections with their own dataclass


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _filled(config: dict | None = None) -> dict:
    config = dict(config or {})
    validate(config, str(SCHEMA), set_default=True)
    return config


def test_empty_qc_config_gives_the_dataclass_defaults():
    cfg = _filled()
    assert QCThresholds.from_config(cfg) == QCThresholds()
    assert AortaQCThresholds.from_config(cfg["aorta"]) == AortaQCThresholds()
    assert ViewQCThresholds.from_config(cfg["views"]) == ViewQCThresholds()


@pytest.mark.parametrize(
    ("section", "cls"),
    [(s, QCThresholds) for s in ("image", "segmentation", "phenotype", "uncertainty", "strain")]
    + [("aorta", AortaQCThresholds), ("views", ViewQCThresholds)],
)
def test_every_schema_default_equals_the_dataclass_default(section, cls):
    defaults = asdict(cls())
    props = _schema()["properties"][section]["properties"]
    for key, prop in props.items():
        assert key in defaults, f"qc.{section}.{key} is in the schema but not in {cls.__name__}"
        if "default" in prop:
            want = prop["default"]
            got = defaults[key]
            if isinstance(got, tuple):
                got = list(got)
            if isinstance(got, dict):
                got = {k: list(v) for k, v in got.items()}
            assert got == want, f"qc.{section}.{key}: schema {want}, {cls.__name__} {got}"


def test_every_threshold_has_one_schema_key_in_one_section():
    sections = {
        s: set(p["properties"]) for s, p in _schema()["properties"].items() if s not in OWN_SECTIONS
    }
    seen: dict[str, str] = {}
    for section, keys in sections.items():
        for key in keys:
            assert key not in seen, f"qc.{section}.{key} is also qc.{seen[key]}.{key}"
            seen[key] = section
    assert set(seen) == {f.name for f in fields(QCThresholds)}


def test_a_key_given_in_two_sections_is_refused():
    with pytest.raises(ValueError, match="min_tta_dice"):
        QCThresholds.from_config({"uncertainty": {"min_tta_dice": 0.8}, "min_tta_dice": 0.5})
