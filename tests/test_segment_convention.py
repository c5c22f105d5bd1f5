"""The endocardial conventions of short-axis labels (cardiopheno.segment.convention)."""

from __future__ import annotations

import numpy as np
import pytest

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from cardiopheno.segment.convention import (
    SmoothEndocardium,
    apply_convention,
    check_convention,
    disk,
    smooth_endocardium,
)

PIXEL = (1.0, 1.0)


def trabeculated_slice(
    n: int = 112, fingers: int = 14, depth_mm: float = 4.0, pixel: tuple = PIXEL
) -> tuple[np.ndarray, np.ndarray]:
    """An LV annulus (compact wall 25-35 mm from the centre) whose inner border is irregular:
    ``fingers`` myocardial trabeculae ``depth_mm`` deep reaching into the cavity, with the RV
    beside it. Returns (labels as drawn, labels with a smooth endocardium)."""
    x, y = np.meshgrid(
        (np.arange(n) - n / 2) * pixel[0], (np.arange(n) - n / 2) * pixel[1], indexing="ij"
    )
    r, theta = np.hypot(x, y), np.arctan2(y, x)
    smooth = np.zeros((n, n), np.uint8)
    smooth[r < 35] = LV_MYOCARDIUM
    smooth[r < 25] = LV_CAVITY
    smooth[(x > 40) & (np.abs(y) < 30) & (r >= 38)] = RV_CAVITY
    drawn = smooth.copy()
    finger = np.cos(fingers * theta) > 0.0  # half of the circumference
    drawn[(r >= 25 - depth_mm) & (r < 25) & finger] = LV_MYOCARDIUM
    return drawn, smooth


def test_cavity_grows_to_the_smooth_border_and_the_rest_is_unchanged():
    drawn, smooth = trabeculated_slice()
    out = smooth_endocardium(drawn.copy(), PIXEL)
    cavity, truth = out == LV_CAVITY, smooth == LV_CAVITY
    dice = 2 * (cavity & truth).sum() / (cavity.sum() + truth.sum())
    lost = truth.sum() - (drawn == LV_CAVITY).sum()
    assert lost > 0.1 * truth.sum()  # the trabeculae took over a tenth of the cavity
    # the closing's disk still reaches a sliver (under 1 mm) into each finger's base
    assert cavity.sum() - (drawn == LV_CAVITY).sum() > 0.7 * lost
    assert dice > 0.975
    assert abs(cavity.sum() / truth.sum() - 1) < 0.05
    # the epicardial border, the RV and the background are untouched
    np.testing.assert_array_equal(out > 0, drawn > 0)
    np.testing.assert_array_equal(out == RV_CAVITY, drawn == RV_CAVITY)
    # myocardium only ever becomes cavity
    assert not ((drawn == LV_CAVITY) & (out != LV_CAVITY)).any()


def test_smooth_endocardium_is_idempotent():
    drawn, _ = trabeculated_slice()
    once = smooth_endocardium(drawn.copy(), PIXEL)
    twice = smooth_endocardium(once.copy(), PIXEL)
    np.testing.assert_array_equal(once, twice)


def test_a_smooth_annulus_is_left_as_it_is():
    _, smooth = trabeculated_slice()
    np.testing.assert_array_equal(smooth_endocardium(smooth.copy(), PIXEL), smooth)


def test_free_papillary_muscle_joins_the_cavity():
    _, smooth = trabeculated_slice()
    drawn = smooth.copy()
    drawn[50:55, 45:50] = LV_MYOCARDIUM  # an island inside the cavity
    out = smooth_endocardium(drawn, PIXEL)
    np.testing.assert_array_equal(out, smooth)


def test_a_compact_wall_always_remains():
    drawn, _ = trabeculated_slice()
    params = SmoothEndocardium(closing_mm=30.0, min_wall_mm=4.0)
    out = smooth_endocardium(drawn.copy(), PIXEL, params)
    # every epicardial border pixel and its neighbours within 4 mm stay myocardium
    from scipy import ndimage

    lv = np.isin(drawn, (LV_CAVITY, LV_MYOCARDIUM))
    inner = ndimage.binary_erosion(lv, disk(4.0, PIXEL))
    assert (out[lv & ~inner] == LV_MYOCARDIUM).all()


def test_slices_and_frames_are_independent_and_match_the_2d_result():
    drawn, _ = trabeculated_slice()
    stack = np.zeros((*drawn.shape, 3, 2), np.uint8)
    stack[..., 1, 0] = drawn
    stack[..., 2, 1] = np.roll(drawn, 5, axis=0)
    out = smooth_endocardium(stack.copy(), PIXEL)
    np.testing.assert_array_equal(out[..., 1, 0], smooth_endocardium(drawn.copy(), PIXEL))
    np.testing.assert_array_equal(
        out[..., 2, 1], smooth_endocardium(np.roll(drawn, 5, axis=0), PIXEL)
    )
    assert not out[..., 0, :].any() and not out[..., 1, 1].any()


def test_sizes_are_in_mm_not_pixels():
    # the same heart drawn on 1.8 mm and 0.9 mm pixels: the same cavity area within pixelation
    coarse, truth = trabeculated_slice(64, pixel=(1.8, 1.8))
    fine, _ = trabeculated_slice(128, pixel=(0.9, 0.9))
    area_coarse = (smooth_endocardium(coarse, (1.8, 1.8)) == LV_CAVITY).sum() * 1.8**2
    area_fine = (smooth_endocardium(fine, (0.9, 0.9)) == LV_CAVITY).sum() * 0.9**2
    assert abs(area_fine / area_coarse - 1) < 0.05
    assert abs(area_coarse / ((truth == LV_CAVITY).sum() * 1.8**2) - 1) < 0.07


def test_acdc_convention_returns_the_labels_bit_identical():
    drawn, _ = trabeculated_slice()
    before = drawn.copy()
    out = apply_convention(drawn, "acdc", PIXEL)
    assert out is drawn
    np.testing.assert_array_equal(out, before)


def test_unknown_convention_is_named():
    with pytest.raises(ValueError, match=r"'ukb' is not one of ukbb, acdc"):
        check_convention("ukb")


def test_anisotropic_pixels_give_an_elliptic_disk():
    footprint = disk(3.0, (1.0, 2.0))
    assert footprint.shape == (7, 3)
    assert footprint[3].all() and footprint[:, 1].all()


# ------------------------------------------------------------------- inference, CLI and config
def _cine(path, rng, shape=(40, 40, 3, 4), zooms=(1.8, 1.8, 8.0, 30.0)):
    import nibabel as nib

    img = nib.Nifti1Image(rng.normal(100, 10, shape).astype(np.float32), np.diag([*zooms[:3], 1]))
    img.header.set_zooms(zooms)
    nib.save(img, path)
    return path


def test_segmenter_acdc_is_the_pipeline_without_a_convention(tiny_checkpoint, rng):
    from cardiopheno.segment.infer import PassOptions, Segmenter, StepOptions

    data = rng.normal(100, 10, (40, 40, 3, 4)).astype(np.float32)
    seg = Segmenter(
        tiny_checkpoint,
        device="cpu",
        steps=StepOptions(convention="acdc"),
        passes=PassOptions(tta=True),
    )
    acdc = seg.segment_array(data, (1.8, 1.8, 8.0))
    seg.convention = "none"  # the post-processing before conventions existed
    before = seg.segment_array(data, (1.8, 1.8, 8.0))
    np.testing.assert_array_equal(acdc.labels, before.labels)
    assert acdc.uncertainty == before.uncertainty or all(
        np.isnan(a) and np.isnan(b)
        for a, b in zip(acdc.uncertainty.values(), before.uncertainty.values(), strict=True)
    )


def test_segmenter_ukbb_smooths_after_the_post_processing(tiny_checkpoint):
    from cardiopheno.segment.infer import Segmenter, StepOptions
    from cardiopheno.segment.transforms import postprocess

    drawn, _ = trabeculated_slice()
    labels = np.repeat(drawn[:, :, None, None], 2, axis=3)
    seg = Segmenter(tiny_checkpoint, device="cpu", steps=StepOptions(convention="ukbb"))
    expected = smooth_endocardium(postprocess(labels.copy()), (1.0, 1.0))
    np.testing.assert_array_equal(seg._clean(labels.copy(), (1.0, 1.0)), expected)
    assert (expected == LV_CAVITY).sum() > (labels == LV_CAVITY).sum()
    with pytest.raises(ValueError, match="'smooth' is not one of ukbb, acdc"):
        Segmenter(tiny_checkpoint, device="cpu", steps=StepOptions(convention="smooth"))


@pytest.mark.parametrize(
    ("setting", "source", "expected"),
    [("auto", "manifest", "ukbb"), ("auto", "synthetic", "acdc"), ("acdc", "manifest", "acdc")],
)
def test_batch_records_the_convention(tmp_path, tiny_checkpoint, rng, setting, source, expected):
    from cardiopheno.io.tables import file_metadata
    from cardiopheno.segment.infer import run_batch

    image = _cine(tmp_path / "sa.nii.gz", rng)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"eid,sa\n1,{image}\n")
    settings = {"checkpoint": str(tiny_checkpoint), "device": "cpu", "progress": False,
                "convention": setting}  # fmt: skip
    table = tmp_path / "b.parquet"
    run_batch(manifest, tmp_path / "seg", table, settings, config={"cohort": {"source": source}})
    assert file_metadata(table)["convention"] == expected


def test_cli_convention_option(tmp_path, tiny_checkpoint, rng, capsys):
    import nibabel as nib

    from cardiopheno.cli import main as cli_main
    from cardiopheno.segment.infer import Segmenter, StepOptions

    image = _cine(tmp_path / "sa.nii.gz", rng)
    out = tmp_path / "seg.nii.gz"
    args = ["segment", "--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--input",
            str(image), "--output", str(out)]  # fmt: skip
    assert cli_main([*args, "--convention", "acdc"]) == 0
    expected = Segmenter(tiny_checkpoint, device="cpu", steps=StepOptions(convention="acdc"))
    expected = expected.segment_file(image, tmp_path / "direct.nii.gz").labels
    np.testing.assert_array_equal(np.asarray(nib.load(out).dataobj), expected)
    with pytest.raises(SystemExit):
        cli_main([*args, "--convention", "smooth"])
    assert "invalid choice: 'smooth'" in capsys.readouterr().err
