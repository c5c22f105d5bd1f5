"""``cardiopheno segment --reference``: a lone frame (ACDC's and M&Ms' ES file) segmented with the
cine's first frame as its phase reference gives the labels it has within the cine; without one,
a warning says the frame is its own reference. The shipped short-axis model (version 4 reads the
first frame beside each slice) on one synthetic subject."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from cardiopheno.cli import main
from cardiopheno.io.nifti import save_nifti

FAST = ["--no-tta", "--flip-ensemble", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """A synthetic subject's ED and ES frames, as one [ED, ES] cine and as two 3D files."""
    from cardiopheno.synth.imaging import simulate_subject
    from cardiopheno.synth.population import sample_population

    subject = simulate_subject(sample_population(3, 7).iloc[1], 7, 1, views=())
    es = int(np.argmin(np.count_nonzero(subject.labels == 1, axis=(0, 1, 2))))
    image = subject.image.astype(np.float32)
    root = tmp_path_factory.mktemp("frames")
    paths = {name: str(root / f"{name}.nii.gz") for name in ("cine", "ed", "es")}
    save_nifti(paths["cine"], image[..., [0, es]], subject.affine, zooms=subject.zooms)
    save_nifti(paths["ed"], image[..., 0], subject.affine, zooms=subject.zooms[:3])
    save_nifti(paths["es"], image[..., es], subject.affine, zooms=subject.zooms[:3])
    return paths


def segment(out, *args: str) -> np.ndarray:
    assert main(["segment", *args, "--output", str(out), *FAST]) == 0
    return np.asarray(nib.load(out).dataobj)


def test_a_lone_es_frame_with_its_reference_gives_the_labels_of_the_two_frame_cine(
    frames, tmp_path, capsys
):
    within = segment(tmp_path / "cine.nii.gz", "--input", frames["cine"])[..., 1]
    alone = segment(tmp_path / "es.nii.gz", "--input", frames["es"], "--reference", frames["ed"])
    assert np.count_nonzero(within == 1) > 100  # the model found the LV
    np.testing.assert_array_equal(alone, within)
    assert "warning" not in capsys.readouterr().err


def test_a_lone_frame_without_a_reference_is_segmented_with_a_warning(frames, tmp_path, capsys):
    segment(tmp_path / "es.nii.gz", "--input", frames["es"])
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "no --reference" in x)
    assert line.startswith("cardiopheno segment: warning: ")
    assert frames["es"] in line and "--reference ED.nii.gz" in line


def test_a_reference_on_another_grid_is_refused_naming_both_files(frames, tmp_path, capsys):
    img = nib.load(frames["ed"])
    moved = img.affine.copy()
    moved[0, 3] += 5.0
    other = tmp_path / "ed_moved.nii.gz"
    save_nifti(other, np.asarray(img.dataobj), moved, zooms=img.header.get_zooms())
    code = main(["segment", "--input", frames["es"], "--reference", str(other),
                 "--output", str(tmp_path / "x.nii.gz"), *FAST])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "reference" in err and str(other) in err and frames["es"] in err and "5 mm" in err


def test_training_pairs_take_the_reference_column_for_a_lone_es_frame(tmp_path, rng):
    """train-segmentation --nifti-manifest: an ES file's row names its ED file as reference;
    a row without one is its own."""
    from cardiopheno.segment.data import nifti_pair_volumes

    ed = rng.uniform(0, 100, (12, 10, 3)).astype(np.float32)
    es = 0.7 * ed
    labels = np.zeros(ed.shape, np.uint8)
    labels[4:8, 3:7, :] = 1
    for name, data in (("ed", ed), ("es", es), ("es_gt", labels), ("ed_gt", labels)):
        save_nifti(tmp_path / f"{name}.nii.gz", data, np.eye(4), zooms=(1.5, 1.5, 8.0))
    (tmp_path / "pairs.csv").write_text(
        "eid,image,label,reference\n"
        "p1,ed.nii.gz,ed_gt.nii.gz,\n"
        "p1,es.nii.gz,es_gt.nii.gz,ed.nii.gz\n"
    )
    first, second = nifti_pair_volumes(tmp_path / "pairs.csv")
    np.testing.assert_allclose(first.reference, ed.transpose(2, 0, 1))
    np.testing.assert_allclose(second.image, es.transpose(2, 0, 1))
    np.testing.assert_allclose(second.reference, ed.transpose(2, 0, 1))
