"""Every subject is accounted for, with the reason it stopped."""

import pandas as pd

from cardiopheno.summary import stage_counts, subject_outcomes


def test_each_subject_has_a_stage_and_a_reason():
    manifest = pd.DataFrame({"eid": ["1", "2", "3", "4", "5"]})
    seg = pd.DataFrame(
        {
            "eid": ["1", "2", "3", "4"],
            "ok": [True, False, True, True],
            "reason": ["", "sa.nii.gz: cannot read image", "", ""],
        }
    )
    qc = pd.DataFrame(
        {
            "eid": ["1", "3", "4"],
            "qc_pass": [True, False, True],
            "qc_reasons": ["", "image_nan: 12 NaN voxels", ""],
        }
    )
    cov = pd.DataFrame({"eid": ["1", "3", "4"], "age": [50, 60, None], "sex": [0, 1, 1]})
    out = subject_outcomes(manifest, seg, qc, cov).set_index("eid")
    assert out.loc["1", "analysed"] and out.loc["1", "reason"] == ""
    assert out.loc["2", "reason"] == "segmentation: sa.nii.gz: cannot read image"
    assert out.loc["3", "reason"] == "qc: image_nan: 12 NaN voxels"
    assert out.loc["4", "reason"] == "covariates: missing age"
    assert out.loc["5", "reason"].startswith("segmentation: no status recorded")
    counts = stage_counts(out.reset_index()).set_index("stage")
    assert counts["n"].tolist() == [5, 3, 2, 1]
    assert counts.loc["segmented", "lost"] == 2
    assert "qc: image_nan" in counts.loc["qc_passed", "top_reasons"]
