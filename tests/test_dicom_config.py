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


def test_the_primary_view_keeps_the_configured_series_and_the_others_use_their_own():
    from cardiopheno.io.dicom_series import VIEW_SERIES_EXCLUDE
    from cardiopheno.views import VIEWS

    configured = DicomOptions(series_include=("^mine$",), slice_spacing_tolerance_mm=2.0)
    for name, spec in VIEWS.items():
        if spec.primary:
            assert configured.for_view(name) is configured
        elif spec.dicom_series:
            options = configured.for_view(name)
            assert options.series_include == spec.dicom_series
            assert options.series_exclude == VIEW_SERIES_EXCLUDE
            assert options.slice_spacing_tolerance_mm == 2.0  # the tolerances stay
