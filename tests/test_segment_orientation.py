"""The canonical in-plane orientation of single-slice views (segment.orientation)."""

from __future__ import annotations

import numpy as np
import pytest

from cardiopheno.segment.augment import train_transforms
from cardiopheno.segment.orientation import TURNS, InPlaneTurn, canonical_turn


def _stored(turn: InPlaneTurn, image: np.ndarray, affine: np.ndarray):
    """The same slice stored with its grid turned by ``turn``: array and matching affine."""
    stored = turn.invert(image)
    # world of stored index p is world of canonical index turn(p): build it pixel by pixel
    n0, n1 = stored.shape[:2]
    idx = np.arange(n0 * n1).reshape(n0, n1)
    where = turn.apply(idx)  # canonical grid holding each stored pixel's id
    pos = {int(v): (i, j) for (i, j), v in np.ndenumerate(where)}

    def world(i, j):
        ci, cj = pos[int(idx[i, j])]
        return affine[:3, :3] @ np.array([ci, cj, 0.0]) + affine[:3, 3]

    out = np.eye(4)
    origin = world(0, 0)
    out[:3, 0] = world(1, 0) - origin
    out[:3, 1] = world(0, 1) - origin
    out[:3, 2] = affine[:3, 2]
    out[:3, 3] = origin
    return stored, out


def test_turns_invert_and_swap_spacing():
    a = np.arange(3 * 5 * 2).reshape(3, 5, 2)
    for turn in TURNS:
        assert np.array_equal(turn.invert(turn.apply(a)), a)
        assert turn.apply(a).shape[:2] == ((5, 3) if turn.transpose else (3, 5))
        assert turn.spacing((1.0, 2.0, 6.0)) == (
            (2.0, 1.0, 6.0) if turn.transpose else (1.0, 2.0, 6.0)
        )
    assert len(set(TURNS)) == 8


@pytest.mark.parametrize("turn", TURNS)
def test_any_stored_orientation_comes_back_to_the_same_canonical_image(turn):
    """A slice whose canonical axes point left-anterior and to the feet, stored in any of the
    eight orientations with a consistent affine, is turned back to the same array."""
    rng = np.random.default_rng(0)
    image = rng.random((6, 9))
    affine = np.eye(4)
    affine[:3, 0] = [-1.2, 0.3, 0.0]  # towards the patient's left (RAS: -x)
    affine[:3, 1] = [0.0, 0.2, -1.2]  # towards the feet
    stored, stored_affine = _stored(turn, image, affine)
    found = canonical_turn(stored_affine)
    assert np.array_equal(found.apply(stored), image)


def test_no_affine_or_a_degenerate_one_leaves_the_image_alone():
    assert canonical_turn(None).identity
    assert canonical_turn(np.zeros((4, 4))).identity
    bad = np.eye(4)
    bad[0, 0] = np.nan
    assert canonical_turn(bad).identity


def test_canonical_training_mirrors_along_the_first_axis_only():
    """Augmentation of a canonical view never turns the image upside down: with every random
    draw, the label's centre of mass stays in the lower half when it starts there."""
    label = np.zeros((1, 32, 32), np.float32)
    label[0, 10:22, 24:30] = 1  # towards the feet (second axis large)
    item = {"image": label.copy(), "label": label.copy()}
    tf = train_transforms("exact", None, symmetric=True, canonical=True)
    for seed in range(20):
        tf.set_random_state(seed)
        out = tf(dict(item))["label"][0].numpy()
        cols = np.nonzero(out)[1]
        assert cols.mean() > 16


def test_a_long_axis_cine_gets_the_same_labels_however_its_grid_is_stored():
    """The shipped 4-chamber model on one cine stored in two orientations (transposed and
    flipped, with the affine that says so): each output is the other's labels turned alike."""
    from cardiopheno.segment.infer import ComputeOptions, Segmenter

    rng = np.random.default_rng(1)
    image = np.zeros((72, 64, 1, 2), np.float32)
    image[20:50, 10:40] = 1.0  # a bright blob on noise
    image += 0.2 * rng.random(image.shape, dtype=np.float32)
    affine = np.diag([1.8, 1.8, 6.0, 1.0])
    affine[:3, 1] = [0.0, 0.3, -1.8]
    turn = InPlaneTurn(transpose=True, flip_i=True, flip_j=False)
    stored, stored_affine = _stored(turn, image[:, :, 0, 0], affine)
    stored_cine = np.stack([turn.invert(image[:, :, 0, t]) for t in range(2)], axis=-1)[:, :, None]
    assert np.array_equal(stored_cine[:, :, 0, 0], stored)
    seg = Segmenter(view="la_4ch", device="cpu", compute=ComputeOptions(threads=1))
    a = seg.segment_array(image, (1.8, 1.8, 6.0), affine=affine).labels
    b = seg.segment_array(stored_cine, (1.8, 1.8, 6.0), affine=stored_affine).labels
    assert b.shape == stored_cine.shape
    assert np.array_equal(turn.invert(a), b)
