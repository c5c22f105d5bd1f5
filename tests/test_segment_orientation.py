"""The canonical in-plane orientation of single-slice views (segment.orientation)."""

from __future__ import annotations

import numpy as np
import pytest

from cardiopheno.segment.orientation import TURNS, InPlaneTurn, canonical_turn
from cardiopheno.segment.train import train_transforms


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
