"""The phantom's atria: truncated ellipsoids on the valve plane whose volumes are known exactly.

Heart frame as in :mod:`cardiopheno.synth.anatomy` (z along the LV long axis towards the base,
the LV axis at u = v = 0, the RV towards -u). Each atrium is the part above the atrioventricular
(valve) plane z_b(t) of an ellipsoid with a circular horizontal section of radius R(t) and a
vertical half-axis H(t), centred beta H(t) above the valve plane, so the atrium opens onto its
ventricle through a disc of radius R sqrt(1 - beta^2). Its roof z_b + (1 + beta) H is fixed in the
chest: when the valve plane descends in systole the atrium lengthens, as real atria do. Its volume
is pi R^2 H (2/3 + beta - beta^3 / 3), solved for R every frame to follow a target volume curve:

* reservoir: the atrium fills while the ventricle ejects (minimum at ventricular end-diastole,
  after the atrial kick; maximum at ventricular end-systole);
* conduit: passive emptying during the ventricle's early filling and diastasis;
* booster: active emptying during atrial contraction (its share grows with age).

Volumes per subject come from :func:`atrial_volumes` (a small population model stated there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cardiopheno.synth.anatomy import CycleShape, Heart, _smoothstep

ATRIAL_BETA = 0.5  # valve plane below the ellipsoid centre, as a fraction of H
_K = 2.0 / 3.0 + ATRIAL_BETA - ATRIAL_BETA**3 / 3.0  # volume = pi R^2 H _K
ASPECT_AT_MAX = 0.9  # R / H at maximal volume (atria are slightly taller than wide)
SEPTUM_MM = 5.0  # gap between LA and RA (interatrial septum and both walls)


@dataclass(frozen=True)
class Atrium:
    """One atrium; arrays per frame in cycle order (frame 0 = ventricular ED)."""

    name: str
    u: float
    v: float
    z_roof: float
    radius: np.ndarray  # R(t), mm
    half_height: np.ndarray  # H(t), mm
    volume: np.ndarray  # analytic, mL

    def centre_z(self, z_base: np.ndarray) -> np.ndarray:
        return z_base + ATRIAL_BETA * self.half_height

    def implicit(self, u, v, z, frame: int, z_base: float, grow: float = 0.0):
        """<= 1 inside the full ellipsoid grown by ``grow`` mm (the caller cuts at the valve)."""
        r = self.radius[frame] + grow
        h = self.half_height[frame] + grow
        zc = z_base + ATRIAL_BETA * self.half_height[frame]
        return ((u - self.u) ** 2 + (v - self.v) ** 2) / r**2 + ((z - zc) / h) ** 2

    def section_radius(self, z: np.ndarray, z_base: np.ndarray) -> np.ndarray:
        """Radius of the horizontal section at height z (broadcast with frames); 0 outside."""
        zc = z_base + ATRIAL_BETA * self.half_height
        q = 1.0 - ((z - zc) / self.half_height) ** 2
        return self.radius * np.sqrt(np.clip(q, 0.0, None)) * (z > z_base)

    def plane_section(self, offset: float, frame: int) -> tuple[float, float]:
        """Area (mm2) and vertical extent above the valve (mm) of the cut by a vertical plane at
        distance ``offset`` from the centre: the analytic answer the area-length method sees."""
        r, h = self.radius[frame], self.half_height[frame]
        q = max(0.0, 1.0 - (offset / r) ** 2)
        a, b = r * np.sqrt(q), h * np.sqrt(q)  # semi-axes of the elliptic section
        if b <= 0:
            return 0.0, 0.0
        # Part of that ellipse above the valve line, beta h below its centre.
        y0 = -ATRIAL_BETA * h
        if y0 <= -b:
            return float(np.pi * a * b), float(2 * b)
        s = y0 / b
        below = a * b * (np.arcsin(s) + s * np.sqrt(1 - s * s) + np.pi / 2)
        return float(np.pi * a * b - below), float(b - y0)


def atrial_curve(shape: CycleShape, n_frames: int, v_min: float, v_max: float, passive: float):
    """Atrial volume (mL) per frame, cycle order: reservoir, conduit and booster phases."""
    phase = np.arange(n_frames) / n_frames
    p1 = shape.t_es + shape.ivr
    p2 = p1 + shape.d_e
    p3 = 1.0 - shape.d_a
    early = _smoothstep((phase - p1) / shape.d_e)
    diastasis = np.clip((phase - p2) / max(p3 - p2, 1e-6), 0.0, 1.0)
    conduit = (shape.e_share * early + shape.diastasis_share * diastasis) / (
        shape.e_share + shape.diastasis_share
    )
    booster = _smoothstep((phase - p3) / shape.d_a)
    fill = np.where(
        phase <= shape.t_es,
        _smoothstep(phase / shape.t_es),
        1.0 - passive * conduit - (1.0 - passive) * booster,
    )
    return v_min + (v_max - v_min) * fill


def atrial_volumes(row: pd.Series, rng: np.random.Generator) -> dict[str, float]:
    """True atrial IDPs of one subject.

    LAV_max = (22 + 0.25 age + 4 sex + 14 BSA) x LogNormal(0, 0.2) mL and RAV_max = (25 + 0.1 age
    + 12 sex + 22 BSA) x LogNormal(0, 0.22) mL (means near the UK Biobank reference ranges of
    Petersen et al., JCMR 2017: LA about 60-70 mL, RA about 70-90 mL); LAEF = 62 - 0.1 (age - 60)
    + N(0, 6) %, RAEF = 47 + N(0, 8) %; dilated or low-EF ventricles: LA x 1.3, LAEF - 12. The
    passive (conduit) share of LA emptying is 0.65 - 0.006 (age - 60) + N(0, 0.05).
    """
    age, sex, bsa = float(row["age"]), float(row["sex"]), float(row["bsa_m2"])
    sick = row.get("pathology", "none") in ("dilated", "low_ef")
    la_max = (22 + 0.25 * age + 4 * sex + 14 * bsa) * np.exp(rng.normal(0, 0.2))
    ra_max = (25 + 0.1 * age + 12 * sex + 22 * bsa) * np.exp(rng.normal(0, 0.22))
    laef = 62 - 0.1 * (age - 60) + rng.normal(0, 6)
    raef = 47 + rng.normal(0, 8)
    if sick:
        la_max *= 1.3
        laef -= 12
    laef, raef = float(np.clip(laef, 20, 80)), float(np.clip(raef, 20, 75))
    passive = float(np.clip(0.65 - 0.006 * (age - 60) + rng.normal(0, 0.05), 0.3, 0.85))
    return {
        "LAV_max": float(la_max),
        "LAV_min": float(la_max * (1 - laef / 100)),
        "RAV_max": float(ra_max),
        "RAV_min": float(ra_max * (1 - raef / 100)),
        "LA_passive_share": passive,
    }


def _fit(name, u, v, volume_ml, z_base):
    vol = np.asarray(volume_ml, float) * 1000.0
    k = int(np.argmax(vol))
    h_max = (vol[k] / (np.pi * _K * ASPECT_AT_MAX**2)) ** (1.0 / 3.0)
    z_roof = z_base[k] + (1.0 + ATRIAL_BETA) * h_max
    h = (z_roof - z_base) / (1.0 + ATRIAL_BETA)
    r = np.sqrt(vol / (np.pi * _K * h))
    return Atrium(name, float(u), float(v), float(z_roof), r, h, vol / 1000.0)


def build_atria(
    heart: Heart, shape: CycleShape, truth: dict[str, float], rng: np.random.Generator
) -> tuple[Atrium, Atrium]:
    """LA over the LV (its centre a few mm off the LV axis) and RA beside it over the RV."""
    n = len(heart.a)
    la = atrial_curve(shape, n, truth["LAV_min"], truth["LAV_max"], truth["LA_passive_share"])
    ra = atrial_curve(shape, n, truth["RAV_min"], truth["RAV_max"], 0.6)
    zb = heart.z_base
    la_atrium = _fit("LA", rng.normal(2.0, 2.0), rng.normal(3.0, 2.0), la, zb)
    ra_atrium = _fit("RA", 0.0, rng.normal(1.0, 2.0), ra, zb)
    # side by side, separated by the interatrial septum at their widest
    u_ra = la_atrium.u - (la_atrium.radius.max() + ra_atrium.radius.max() + SEPTUM_MM)
    return la_atrium, replace(ra_atrium, u=float(u_ra))


# the atria seen in each long-axis view, and their label there
VIEW_ATRIA = {"la_2ch": (("LA", 1),), "la_4ch": (("LA", 4), ("RA", 5))}


def atrial_truth_tables(
    row: pd.Series, atria: tuple[Atrium, Atrium], views: dict, dt_ms: float
) -> tuple[dict[str, float], pd.DataFrame]:
    """Atrial IDPs of the 3D phantom (analytic) and per-frame curves: analytic volumes, and per
    view the atrium's area from the truth labels with the analytic area and length of the plane's
    cut (what the area-length method is given). Long-axis cines start at ventricular ED."""
    eid = str(row["eid"])
    t: dict[str, float] = {}
    curves = {"eid": eid}
    for a in atria:
        vmax, vmin = float(a.volume.max()), float(a.volume.min())
        t[f"{a.name}V_max"], t[f"{a.name}V_min"] = vmax, vmin
        t[f"{a.name}SV"], t[f"{a.name}EF"] = vmax - vmin, 100.0 * (vmax - vmin) / vmax
        curves[f"{a.name}_volume_ml_analytic"] = a.volume
    n = len(atria[0].volume)
    curves["frame"] = np.arange(n)
    curves["time_ms"] = np.arange(n) * dt_ms
    by_name = {a.name: a for a in atria}
    for view, img in views.items():
        px = img.zooms[0] * img.zooms[1]
        for name, label in VIEW_ATRIA[view]:
            tag = f"{name}_{view.removeprefix('la_')}"
            curves[f"{tag}_area_mm2"] = (img.labels == label).sum(axis=(0, 1, 2)) * px
            cut = [by_name[name].plane_section(img.plane_offset[name], f) for f in range(n)]
            curves[f"{tag}_area_mm2_analytic"] = np.array([c[0] for c in cut])
            curves[f"{tag}_length_mm_analytic"] = np.array([c[1] for c in cut])
            t[f"{tag}_plane_offset_mm"] = img.plane_offset[name]
    return t, pd.DataFrame(curves)
