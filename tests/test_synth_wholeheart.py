"""Long-axis training slices resliced from the real whole-heart segmentation (synth.wholeheart)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cardiopheno.segment.data import wholeheart_volumes

WHOLEHEART = Path(__file__).resolve().parents[2] / "shared" / "data" / "wholeheart"
LABELS = WHOLEHEART / "mmwhs_ct_labels.nii.gz"
needs_labels = pytest.mark.skipif(
    not LABELS.is_file(), reason=f"{LABELS} absent (../shared/data is not in a user's clone)"
)


def _centre(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


@needs_labels
def test_four_chamber_slices_show_every_chamber_atria_above_the_apex():
    vols = list(wholeheart_volumes(LABELS, "la_4ch", 8, seed=3))
    assert len(vols) == 8
    apex_down = 0
    for v in vols:
        lab = v.label[0]
        assert set(np.unique(lab)) <= {0, 1, 2, 3, 4, 5}
        assert all((lab == k).sum() > 50 for k in (1, 2, 3, 4, 5)), v.volume
        # canonical orientation: the second axis points to the feet, so the ventricles lie at
        # larger j than the atria (in 90-93 % of 120 slices of seeds 3 and 4; a steep random
        # tilt or a small cut-off chamber may turn a few)
        apex_down += _centre(lab == 1)[1] > _centre(lab == 4)[1]
        apex_down += _centre(lab == 3)[1] > _centre(lab == 5)[1]
        assert v.image.shape == v.label.shape and np.isfinite(v.image).all()
        assert 1.4 <= v.spacing_xy[0] <= 2.1
    assert apex_down >= 0.85 * 2 * len(vols)


@needs_labels
def test_two_chamber_slices_label_the_left_atrium_only_and_repeat_by_seed():
    a = list(wholeheart_volumes(LABELS, "la_2ch", 3, seed=5))
    b = list(wholeheart_volumes(LABELS, "la_2ch", 3, seed=5))
    for x, y in zip(a, b, strict=True):
        assert set(np.unique(x.label)) == {0, 1}
        assert np.array_equal(x.image, y.image) and np.array_equal(x.label, y.label)
    assert a[0].subject == a[2].subject  # slices grouped for the split


def _cube_stl(path: Path, lo: float, hi: float, corner=(0.0, 0.0, 0.0)) -> None:
    """An ASCII STL of the axis-aligned cube [lo, hi]^3 shifted by ``corner`` (12 triangles)."""
    c = np.array(np.meshgrid([lo, hi], [lo, hi], [lo, hi], indexing="ij")).reshape(3, -1).T
    faces = []
    for axis in range(3):
        for side in (lo, hi):
            q = c[c[:, axis] == side]
            # order the 4 corners around the face
            rest = [a for a in range(3) if a != axis]
            ang = np.arctan2(q[:, rest[1]] - (lo + hi) / 2, q[:, rest[0]] - (lo + hi) / 2)
            q = q[np.argsort(ang)]
            faces += [(q[0], q[1], q[2]), (q[0], q[2], q[3])]
    lines = ["solid cube"]
    for tri in faces:
        lines += ["facet normal 0 0 0", " outer loop"]
        lines += ["  vertex {} {} {}".format(*(v + np.asarray(corner))) for v in tri]
        lines += [" endloop", "endfacet"]
    path.write_text("\n".join([*lines, "endsolid cube"]) + "\n")


def test_a_closed_surface_is_voxelised_to_its_volume(tmp_path):
    from cardiopheno.synth.wholeheart import read_ascii_stl, voxelise

    _cube_stl(tmp_path / "cube.stl", 2.3, 12.3)  # 10 mm cube: 1000 voxels of 1 mm
    tris = read_ascii_stl(tmp_path / "cube.stl")
    assert tris.shape == (12, 3, 3)
    inside = voxelise(tris, np.zeros(3), (16, 16, 16))
    assert inside.sum() == 1000
    assert inside[3:13, 3:13, 3:13].all()


def test_blood_pool_surfaces_become_an_anatomy_with_landmarks(tmp_path):
    """A toy heart of four boxes (LPS mm, as the Strocchi surfaces): each blood pool labelled,
    an LV wall grown around the LV, the apex on the far side of the LV from the mitral valve."""
    from cardiopheno.synth.wholeheart import WHS_LA, WHS_LV, WHS_MYO, WHS_RA, WHS_RV, load_anatomy

    boxes = {  # name: corner (LPS mm: x to the left, z to the head) of 20 mm cubes
        "left_ventricle": (0.0, 0.0, 0.0),
        "left_atrium": (0.0, 0.0, 21.0),
        "right_ventricle": (-21.0, 0.0, 0.0),
        "right_atrium": (-21.0, 0.0, 21.0),
    }
    for name, corner in boxes.items():
        _cube_stl(tmp_path / f"{name}.stl", 0.0, 20.0, corner)
    anatomy = load_anatomy(tmp_path)
    for label in (WHS_LV, WHS_LA, WHS_RA, WHS_RV):
        assert abs((anatomy.labels == label).sum() - 8000) <= 1300  # 20-21 voxels a side
    assert (anatomy.labels == WHS_MYO).sum() > 2000
    assert np.linalg.norm(anatomy.apex - anatomy.mitral) > 20.0


def test_the_thorax_goes_where_the_slice_affine_says_and_leaves_the_heart_alone():
    from cardiopheno.synth import wholeheart as wh

    n, px = 128, 2.0
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    labels = np.zeros((n, n), np.uint8)
    labels[np.hypot(ii - 64, jj - 50) < 12] = wh.WHS_LA
    labels[np.hypot(ii - 64, jj - 76) < 14] = wh.WHS_LV
    # first pixel axis points to the patient's back, second to the feet (RAS world)
    affine = np.diag([0.0, 0.0, 0.0, 1.0])
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = (0, -px, 0), (0, 0, -px), (6.0, 0, 0)
    placed = {"liver": 0, "aorta": 0}
    for seed in range(12):
        rng = np.random.default_rng(seed)
        classes = wh.paint_classes(labels, rng, px)
        out = wh.thorax(classes, labels, affine, rng, px)
        heart = labels > 0
        assert np.array_equal(out[heart], classes[heart])  # the labelled heart never repainted
        assert set(np.unique(out)) <= set(range(wh._N_CLS))
        if (out == wh._LIVER).any():  # on the feet side: below the heart's lowest pixel
            assert np.argwhere(out == wh._LIVER)[:, 1].mean() > 76 + 14
            placed["liver"] += 1
        dao = (out == wh._DAO) & (np.hypot(ii - 64, jj - 50) < 40)
        if dao.any():  # behind the left atrium
            assert np.argwhere(dao)[:, 0].mean() > 64 + 12
            placed["aorta"] += 1
    assert placed["liver"] >= 6 and placed["aorta"] >= 6, placed
