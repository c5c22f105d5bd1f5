"""Turn a single-slice cine so the patient's anatomy lies the same way in every image.

A long-axis cine may be stored in any in-plane orientation: scanners and exports transpose and
flip its rows and columns freely. Its affine (NIfTI, RAS+) says where the patient's left and
head are, so the image can be put in one orientation before the network sees it: of the eight
label-exact turns of the pixel grid (transposes and flips; no resampling), the one whose first
axis points most towards the patient's left-anterior and whose second axis points most towards
the feet. In that frame a 4-chamber view always has the LV on the same side of the RV, so a
network need not learn both mirror images, which real LV and RV are told apart by poorly (a
model trained with flips labelled the M&Ms-2 4-chamber RV as LV). The turn is undone on the
labels, which keep the input's grid and affine.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# RAS+ world directions the canonical pixel axes point towards: i to the patient's left, j to
# the feet; j weighs more, so an oblique plane whose left-right extent is small is still turned
# apex down.
_TOWARDS_I = np.array([-1.0, 0.0, 0.0])
_TOWARDS_J = np.array([0.0, 0.0, -1.0])
_J_WEIGHT = 3.0


@dataclass(frozen=True)
class InPlaneTurn:
    """A transpose and/or flips of the first two (in-plane) axes of an array."""

    transpose: bool = False
    flip_i: bool = False  # flip the first axis (after any transpose)
    flip_j: bool = False

    @property
    def identity(self) -> bool:
        return not (self.transpose or self.flip_i or self.flip_j)

    def apply(self, data: np.ndarray) -> np.ndarray:
        """``X x Y x ...`` -> the turned array (a copy)."""
        out = data.swapaxes(0, 1) if self.transpose else data
        if self.flip_i:
            out = out[::-1]
        if self.flip_j:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    def invert(self, data: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply` (``invert(apply(a)) == a``)."""
        out = data[:, ::-1] if self.flip_j else data
        if self.flip_i:
            out = out[::-1]
        if self.transpose:
            out = out.swapaxes(0, 1)
        return np.ascontiguousarray(out)

    def spacing(self, spacing: Sequence[float]) -> tuple[float, ...]:
        """The in-plane spacing of the turned array (the rest unchanged)."""
        s = tuple(float(v) for v in spacing)
        return (s[1], s[0], *s[2:]) if self.transpose else s

    def directions(self, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit world directions of the turned array's first and second axes."""
        ei, ej = (affine[:3, k] / max(np.linalg.norm(affine[:3, k]), 1e-12) for k in (0, 1))
        if self.transpose:
            ei, ej = ej, ei
        return (-ei if self.flip_i else ei), (-ej if self.flip_j else ej)


TURNS = tuple(InPlaneTurn(*flags) for flags in itertools.product((False, True), repeat=3))


def canonical_turn(affine: np.ndarray | None) -> InPlaneTurn:
    """The turn that puts a slice with this ``affine`` in the canonical orientation (identity
    when no affine is known or it is degenerate)."""
    if affine is None:
        return InPlaneTurn()
    affine = np.asarray(affine, dtype=float)
    if affine.shape[0] < 3 or not np.all(np.isfinite(affine[:3, :2])):
        return InPlaneTurn()
    if np.linalg.norm(affine[:3, 0]) == 0 or np.linalg.norm(affine[:3, 1]) == 0:
        return InPlaneTurn()

    def score(turn: InPlaneTurn) -> float:
        di, dj = turn.directions(affine)
        return float(di @ _TOWARDS_I + _J_WEIGHT * dj @ _TOWARDS_J)

    return max(TURNS, key=score)
