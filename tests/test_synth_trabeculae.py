"""The phantom's optional trabeculated layer, and the ``ukbb`` convention recovering its truth."""

from __future__ import annotations

import numpy as np
import pytest

from cardiopheno import LV_CAVITY, LV_MYOCARDIUM
from cardiopheno.segment.convention import smooth_endocardium


@pytest.fixture(scope="module")
def subject():
    from cardiopheno.synth.imaging import simulate_subject
    from cardiopheno.synth.population import sample_population

    row = sample_population(3, 7).iloc[1]
    return simulate_subject(row, 7, 1, views=())


@pytest.fixture(scope="module")
def trabeculated(subject):
    from cardiopheno.synth.trabeculae import add_trabeculae

    spacing = subject.zooms[:2]
    return add_trabeculae(subject.image, subject.labels, spacing, np.random.default_rng(0))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_the_layer_is_dark_muscle_in_the_cavity_thicker_at_end_systole(subject, trabeculated):
    image, acdc = trabeculated
    truth = subject.labels
    moved = truth != acdc
    # only cavity became myocardium, and the image changed exactly there
    assert (truth[moved] == LV_CAVITY).all() and (acdc[moved] == LV_MYOCARDIUM).all()
    assert not (image != subject.image)[~moved].any()
    assert image[moved].mean() < 0.5 * subject.image[truth == LV_CAVITY].mean()
    ed, es = subject.truth["ED_frame"], subject.truth["ES_frame"]
    lost = [
        1 - (acdc[..., f] == LV_CAVITY).sum() / (truth[..., f] == LV_CAVITY).sum() for f in (ed, es)
    ]
    assert 0.02 < lost[0] < lost[1] < 0.3  # a few % of the cavity at ED, more at ES


def test_ukbb_convention_recovers_the_smooth_endocardium(subject, trabeculated):
    _, acdc = trabeculated
    truth = subject.labels
    ukbb = smooth_endocardium(acdc.copy(), subject.zooms[:2])
    for frame in (subject.truth["ED_frame"], subject.truth["ES_frame"]):
        t, a, u = truth[..., frame], acdc[..., frame], ukbb[..., frame]
        error_acdc = (a == LV_CAVITY).sum() / (t == LV_CAVITY).sum() - 1
        error_ukbb = (u == LV_CAVITY).sum() / (t == LV_CAVITY).sum() - 1
        assert abs(error_ukbb) < 0.06 and abs(error_ukbb) < 0.75 * abs(error_acdc)
        assert _dice(u == LV_CAVITY, t == LV_CAVITY) > max(
            0.95, _dice(a == LV_CAVITY, t == LV_CAVITY)
        )
        myo_ukbb = (u == LV_MYOCARDIUM).sum() / (t == LV_MYOCARDIUM).sum() - 1
        myo_acdc = (a == LV_MYOCARDIUM).sum() / (t == LV_MYOCARDIUM).sum() - 1
        assert 0 <= myo_ukbb < myo_acdc
    # what was not LV is untouched, and the transform is idempotent on the phantom too
    np.testing.assert_array_equal(ukbb > 0, acdc > 0)
    np.testing.assert_array_equal(smooth_endocardium(ukbb.copy(), subject.zooms[:2]), ukbb)
