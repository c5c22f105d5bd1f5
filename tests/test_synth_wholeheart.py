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
        # larger j than the atria (59 of 60 slices of seed 3; a steep random tilt may turn one)
        apex_down += _centre(lab == 1)[1] > _centre(lab == 4)[1]
        apex_down += _centre(lab == 3)[1] > _centre(lab == 5)[1]
        assert v.image.shape == v.label.shape and np.isfinite(v.image).all()
        assert 1.4 <= v.spacing_xy[0] <= 2.1
    assert apex_down >= 2 * len(vols) - 1


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
