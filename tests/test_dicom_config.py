"""The inputs config section: schema defaults are the library defaults, and the schema fills them."""

from __future__ import annotations

from pathlib import Path

import yaml
from snakemake.utils import validate

from cardiopheno.io.dicom import DicomOptions
from cardiopheno.io.ukbb import DEFAULT_FIELD_MAP

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.inputs.schema.yaml"


def test_schema_defaults_equal_library_defaults():
    section: dict = {}
    validate(section, str(SCHEMA), set_default=True)
    assert DicomOptions.from_config(section["dicom"]) == DicomOptions()
    assert section["ukbb"] == DEFAULT_FIELD_MAP


def test_schema_rejects_unknown_keys():
    import pytest
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError):
        validate({"dicom": {"series_includ": ["sax"]}}, str(SCHEMA))


def test_demo_config_section_is_valid():
    cfg = yaml.safe_load((SCHEMA.parents[2] / "config" / "config.yaml").read_text())
    validate(cfg.get("inputs", {}), str(SCHEMA), set_default=True)
