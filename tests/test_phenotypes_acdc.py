"""ACDC expert labels through our LV/RV families reproduce reference.csv (volumes, EF, mass)."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.phenotypes import SubjectContext, compute_phenotypes, resolve_families

ACDC_TO_OURS = np.array([0, RV_CAVITY, LV_MYOCARDIUM, LV_CAVITY], dtype=np.uint8)


def _labels(path):
    with h5py.File(path, "r") as f:
        return ACDC_TO_OURS[np.asarray(f["label"], dtype=np.uint8)].transpose(2, 1, 0)


@pytest.mark.shared_data
def test_acdc_expert_labels_reproduce_reference_within_0_1_percent(shared_data):
    ref = pd.read_csv(shared_data / "acdc" / "reference.csv")
    fams = resolve_families(["lv_function", "rv_function"])
    for r in ref.iloc[::16].itertuples(index=False):  # one patient of each pathology group
        vol = shared_data / "acdc" / "volumes"
        labels = np.stack(
            [
                _labels(vol / f"{r.patient}_frame{r.ed_frame:02d}.h5"),
                _labels(vol / f"{r.patient}_frame{r.es_frame:02d}.h5"),
            ],
            axis=3,
        )
        ctx = SubjectContext(labels, (1.0, 1.0, r.voxel_volume_mm3), None, ed_frame_mode="first")
        v = compute_phenotypes(ctx, fams)
        for ours, theirs in [("LVEDV", "lvedv_ml"), ("LVESV", "lvesv_ml"), ("RVEDV", "rvedv_ml"),
                             ("RVESV", "rvesv_ml"), ("LVM", "lvm_ed_g"), ("LVEF", "lvef_pct"),
                             ("RVEF", "rvef_pct")]:  # fmt: skip
            assert v[ours] == pytest.approx(getattr(r, theirs), rel=1e-3), (r.patient, ours)
