"""docs/extending.md, done: a toy phenotype family and a toy view, added by touching only the files
the page names (the family module in the phenotypes package, the schema enums, the view's
ViewSpec), are picked up by the registry, the config schema, the segment stage and the batch
stage. The module is written to a temporary folder on the package's path and the ViewSpec is set
with monkeypatch, so the repository is left as it was."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import cardiopheno.phenotypes
from cardiopheno.io.contract import label_problems
from cardiopheno.io.tables import file_metadata, read_table, write_table
from cardiopheno.phenotypes.batch import phenotypes_batch
from cardiopheno.phenotypes.registry import discover_families
from cardiopheno.segment.infer import run_batch, status_columns
from cardiopheno.views import VIEWS, ViewSpec, view_spec

SCHEMAS = Path(__file__).resolve().parents[1] / "workflow/schemas"

# docs/extending.md step 1 of a family: the module (here the README's worked example)
RATIO_FAMILY = '''
"""RV/LV ratios at end-diastole."""
from cardiopheno import LV_CAVITY, RV_CAVITY
from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext

FAMILY = "toy_ratio"
OUTPUTS = [PhenotypeSpec("RVLV_EDV_ratio", "", "RVEDV / LVEDV at the LV's ED frame")]


def compute(ctx: SubjectContext) -> dict[str, float]:
    lv = ctx.label_volume(LV_CAVITY, ctx.ed_frame)
    rv = ctx.label_volume(RV_CAVITY, ctx.ed_frame)
    return {"RVLV_EDV_ratio": rv / lv if lv > 0 else float("nan")}
'''
# a family of the toy view (docs/extending.md, a view, step 5)
BLOB_FAMILY = '''
"""Largest blob area over the toy view's cine."""
import numpy as np
from cardiopheno.phenotypes.registry import PhenotypeSpec, SubjectContext

FAMILY = "toy_blob"
VIEW = "toy"
OUTPUTS = [PhenotypeSpec("blob_max_area", "mm2", "largest blob area over the cine")]


def compute(ctx: SubjectContext) -> dict[str, float]:
    view = ctx.view(VIEW)
    pixels = (view.labels == 1).sum(axis=(0, 1, 2))
    return {"blob_max_area": float(pixels.max() * view.spacing[0] * view.spacing[1])}
'''
TOY_VIEW = ViewSpec(
    "toy", "toy view", {1: "blob"}, {1: "blob"}, "seg_toy", True, "segment_toy_unet.pt", (1,),
    {"seg_toy": (0, 1)},
)  # fmt: skip


@pytest.fixture
def family_modules(tmp_path, monkeypatch):
    """Write family modules into a folder on cardiopheno.phenotypes' path; removed afterwards."""
    folder = tmp_path / "families"
    folder.mkdir()
    monkeypatch.setattr(cardiopheno.phenotypes, "__path__", [*cardiopheno.phenotypes.__path__])
    cardiopheno.phenotypes.__path__.append(str(folder))
    written = []

    def add(name: str, source: str) -> None:
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(f"cardiopheno.phenotypes.{name}")
        importlib.invalidate_caches()

    yield add
    for module in written:
        sys.modules.pop(module, None)


def _schema_with(tmp_path: Path, name: str, path: tuple[str, ...], value: str) -> Path:
    """A copy of ``workflow/schemas/<name>`` with ``value`` added to the enum at ``path``."""
    schema = yaml.safe_load((SCHEMAS / name).read_text())
    node = schema
    for key in path:
        node = node[key]
    node["enum"].append(value)
    out = tmp_path / name
    out.write_text(yaml.safe_dump(schema))
    return out


def _labels(path: Path, labels: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> str:
    nib.save(nib.Nifti1Image(labels, np.diag([*spacing, 1.0])), path)
    return str(path)


def _segment_table(path: Path, eid: str, seg: str, view: ViewSpec) -> Path:
    """A view's segment status table with one provided segmentation (as the segment stage's)."""
    nan = float("nan")
    table = pd.DataFrame(
        {
            "eid": [eid], view.seg_name: [seg], "source": ["provided"], "ok": [True],
            "reason": [""], "seconds": [0.0], "frame_interval_ms": [nan],
            "frame_interval_source": ["none"],
            **{f"tta_dice_{view.keys[c]}": [nan] for c in view.classes},
        }
    )  # fmt: skip
    write_table(table, path, status_columns(view), extra={"view": view.name})
    return path


def test_a_new_family_is_discovered_configured_and_written(tmp_path, family_modules):
    family_modules("toy_ratio", RATIO_FAMILY)
    assert "toy_ratio" in discover_families()
    # the schema's enum is the one config file to touch: refused before, accepted after
    config = {"families": ["lv_function", "toy_ratio"]}
    with pytest.raises(WorkflowError):
        validate(dict(config), str(SCHEMAS / "config.phenotypes.schema.yaml"))
    wider = _schema_with(
        tmp_path, "config.phenotypes.schema.yaml", ("properties", "families", "items"), "toy_ratio"
    )
    validate(dict(config), str(wider))
    # the batch stage writes its column, with its description, for a label map with 40 LV and 60
    # RV voxels at ED
    labels = np.zeros((10, 10, 2, 2), np.uint8)
    labels[:4, :5, :, 0] = 1
    labels[:2, :5, :, 1] = 1
    labels[5:, :6, :, 0] = 3
    seg = _labels(tmp_path / "seg_sa.nii.gz", labels)
    segment = _segment_table(tmp_path / "segment.parquet", "1", seg, view_spec("sa"))
    out = tmp_path / "phenotypes.parquet"
    phenotypes_batch(segment, out, families=config["families"])
    assert read_table(out)["RVLV_EDV_ratio"].tolist() == pytest.approx([1.5])
    field = pq.read_schema(out).field("RVLV_EDV_ratio")
    assert b"RVEDV / LVEDV" in field.metadata[b"description"]


def test_a_new_view_is_segmented_checked_and_measured(tmp_path, family_modules, monkeypatch):
    monkeypatch.setitem(VIEWS, "toy", TOY_VIEW)
    family_modules("toy_blob", BLOB_FAMILY)
    # the segmentation schema's views enum
    wider = _schema_with(
        tmp_path, "config.segmentation.schema.yaml", ("properties", "views", "items"), "toy"
    )
    validate({"views": ["toy"]}, str(wider))
    # the input contract reads its labels from the ViewSpec
    assert label_problems(np.array([[0, 1]], np.uint8), "seg_toy.nii.gz", "toy") == []
    assert label_problems(np.array([[0, 2]], np.uint8), "seg_toy.nii.gz", "toy")
    # the segment stage: without its model every subject is recorded, none crashes
    cine = tmp_path / "toy.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 1, 3), np.float32), np.eye(4)), cine)
    (tmp_path / "manifest.csv").write_text(f"eid,sa,toy\n1,{cine},{cine}\n")
    table = run_batch(
        tmp_path / "manifest.csv", tmp_path / "seg", tmp_path / "toy.parquet", {}, view="toy"
    )
    assert table["reason"].tolist() == ["no toy model: segment_toy_unet.pt not found"]
    assert file_metadata(tmp_path / "toy.parquet")["view"] == "toy"
    # the phenotype batch stage gives the view's family its segmentation
    blob = np.zeros((8, 8, 1, 3), np.uint8)
    blob[:2, :3, 0, 1] = 1  # 6 pixels of 2 x 2 mm at frame 1
    seg_toy = _labels(tmp_path / "seg_toy.nii.gz", blob, (2.0, 2.0, 8.0))
    sa = np.zeros((6, 6, 1, 2), np.uint8)
    sa[1:3, 1:3, 0, 0] = 1
    seg_sa = _labels(tmp_path / "seg_sa.nii.gz", sa)
    segment = _segment_table(tmp_path / "segment.parquet", "1", seg_sa, view_spec("sa"))
    toy_table = _segment_table(tmp_path / "toy_seg.parquet", "1", seg_toy, TOY_VIEW)
    out = tmp_path / "phenotypes.parquet"
    phenotypes_batch(segment, out, families=["toy_blob"], view_tables=[toy_table])
    assert read_table(out)["blob_max_area"].tolist() == pytest.approx([24.0])
