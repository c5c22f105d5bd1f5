"""A parametric beating heart whose chamber volumes are known exactly.

Heart frame: z (mm) along the LV long axis, positive towards the base, with the ED base plane at
z = 0; in-plane coordinates (u, v) in mm with the LV axis at the origin and the RV towards -u.

* LV cavity: a prolate ellipsoid (radius a, half-length c, centre z_c) truncated by the base plane
  z_b = z_c + tau * c; its volume is pi a^2 c (2/3 + tau - tau^3/3).  The cavity apex is fixed;
  the base descends (long-axis shortening) by exactly one slice spacing between ED and ES, so that
  the base plane lies on a slab boundary at both ED and ES and voxel volumes agree with the
  analytic ones there.
* LV myocardium: the shell between the cavity and a confocal-like outer ellipsoid (a + t,
  c + 0.6 t, same centre, same base plane); t is solved every frame so that the myocardial volume
  is constant (mass conservation: the wall thickens in systole).
* RV cavity: a half-ellipsoid (equator on the base plane, length lambda times the LV cavity length,
  elliptical cross-sections s*rho_x, s*rho_y, centred kappa * r_outer(z) towards -u) minus the LV
  (the septum belongs to the LV myocardium): a crescent wrapping the septum that tapers towards the
  apex.  There is no closed form for the crescent, so its volume is integrated numerically (exact
  ray-ellipse intersections over 256 angles, trapezoid in z over 121 points; error below 0.1 %);
  s is solved every frame to hit the target RV volume curve.
* Volume curve over one RR interval: ejection with an early peak, isovolumic relaxation, rapid
  early filling (72 % of SV), diastasis (10 %), atrial kick (18 %); end systole at about
  350 ms * sqrt(RR / 1 s), rounded to a frame so that the sampled minimum is the true ESV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML

SLICE_SPACING_MM = 10.0
SLICE_THICKNESS_MM = 8.0
APEX_THICKNESS_RATIO = 0.6  # apical wall thickness relative to the lateral wall
_N_THETA = 256


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


@dataclass(frozen=True)
class CycleShape:
    """Timing of the cardiac cycle as fractions of the RR interval."""

    t_es: float  # end systole
    ivr: float = 0.06  # isovolumic relaxation
    d_e: float = 0.16  # early (E) filling duration
    d_a: float = 0.14  # atrial (A) filling duration
    e_share: float = 0.72
    diastasis_share: float = 0.10

    def filled(self, phase: np.ndarray) -> np.ndarray:
        """Fraction of stroke volume in the ventricle: 1 at ED (phase 0 and 1), 0 at ES."""
        phase = np.mod(np.asarray(phase, dtype=float), 1.0)
        s = np.clip(phase / self.t_es, 0.0, 1.0)
        warped = 1.0 - (1.0 - s) ** 1.4  # ejection fastest early in systole
        systole = 1.0 - _smoothstep(warped)
        p1 = self.t_es + self.ivr
        p2 = p1 + self.d_e
        p3 = 1.0 - self.d_a
        a_share = 1.0 - self.e_share - self.diastasis_share
        diastole = (
            self.e_share * _smoothstep((phase - p1) / self.d_e)
            + self.diastasis_share * np.clip((phase - p2) / max(p3 - p2, 1e-6), 0.0, 1.0)
            + a_share * _smoothstep((phase - p3) / self.d_a)
        )
        return np.where(phase <= self.t_es, systole, diastole)

    def rates(self, sv_ml: float, rr_ms: float, n: int = 4000) -> tuple[float, float, float]:
        """Peak ejection rate, peak early and peak atrial filling rates (mL/s) of the continuous
        curve."""
        phase = np.linspace(0.0, 1.0, n, endpoint=False)
        dv = np.gradient(sv_ml * self.filled(phase), phase) / (rr_ms / 1000.0)
        mid = (
            self.t_es
            + self.ivr
            + self.d_e
            + 0.5 * (1.0 - self.d_a - self.t_es - self.ivr - self.d_e)
        )
        per = float(-dv[phase <= self.t_es].min())
        pfr_e = float(dv[(phase > self.t_es) & (phase < mid)].max())
        pfr_a = float(dv[phase >= mid].max())
        return per, pfr_e, pfr_a


def cycle_shape(heart_rate: float, n_frames: int) -> tuple[CycleShape, int]:
    """The cycle for a heart rate, with end systole rounded to a frame; returns (shape, ES frame)."""
    rr_ms = 60000.0 / heart_rate
    t_es_ms = 350.0 * np.sqrt(rr_ms / 1000.0)
    es_frame = int(round(t_es_ms / rr_ms * n_frames))
    return CycleShape(t_es=es_frame / n_frames), es_frame


@dataclass(frozen=True)
class Heart:
    """Per-frame geometry (arrays of length n_frames, in the unshifted cycle: frame 0 is ED)."""

    tau: float
    z_apex: float  # cavity apex, fixed
    a: np.ndarray  # cavity radius at the equator
    c: np.ndarray  # cavity half-length
    t: np.ndarray  # lateral wall thickness
    rv_scale: np.ndarray  # s
    rv_length: np.ndarray
    rho_x: float
    rho_y: float
    kappa: float
    lv_volume: np.ndarray  # analytic, mL
    myo_volume: float  # analytic, mL
    rv_volume: np.ndarray  # numerical quadrature, mL

    @property
    def z_c(self) -> np.ndarray:
        return self.z_apex + self.c

    @property
    def z_base(self) -> np.ndarray:
        return self.z_apex + (1.0 + self.tau) * self.c

    def radii(self, z: float | np.ndarray) -> dict[str, np.ndarray]:
        """Cross-section at height z (broadcast against frames): cavity and outer radius, RV
        semi-axes and offset; zero where the structure does not reach z."""
        z = np.asarray(z, dtype=float)
        zc, zb = self.z_c, self.z_base
        below = z <= zb
        dz = z - zc
        big_c = self.c + APEX_THICKNESS_RATIO * self.t
        r_in = self.a * np.sqrt(np.clip(1.0 - (dz / self.c) ** 2, 0.0, None)) * below
        r_out = (self.a + self.t) * np.sqrt(np.clip(1.0 - (dz / big_c) ** 2, 0.0, None)) * below
        g = np.sqrt(np.clip(1.0 - ((zb - z) / self.rv_length) ** 2, 0.0, None)) * below
        return {
            "r_in": r_in,
            "r_out": r_out,
            "rv_x": self.rv_scale * self.rho_x * g,
            "rv_y": self.rv_scale * self.rho_y * g,
            "rv_d": self.kappa * r_out,
        }


def truncated_ellipsoid_volume(a, c, h):
    """Volume (mm3) of the ellipsoid x^2/a^2 + y^2/a^2 + z^2/c^2 <= 1 below the plane z = h."""
    return np.pi * a**2 * (h - h**3 / (3.0 * c**2) + 2.0 * c / 3.0)


def ellipse_disc_overlap(rx, ry, d, r, n_theta: int = _N_THETA):
    """Area of the ellipse centred (-d, 0) with semi-axes rx, ry inside the disc of radius r at the
    origin: exact ray-ellipse intersections, integrated over angle (vectorised by hand: no library computes
    this overlap). Broadcasts over inputs."""
    shape = np.broadcast(rx, ry, d, r).shape
    rx, ry, d, r = (
        np.broadcast_to(np.asarray(x, dtype=float), shape).ravel() for x in (rx, ry, d, r)
    )
    out = np.zeros(rx.size)
    ok = (rx > 0) & (ry > 0) & (r > 0)
    if ok.any():
        theta = np.linspace(0.0, 2.0 * np.pi, n_theta, endpoint=False)
        ct, st = np.cos(theta), np.sin(theta)
        irx2, iry2 = 1.0 / rx[ok, None] ** 2, 1.0 / ry[ok, None] ** 2
        dd, rr = d[ok, None], r[ok, None]
        qa = ct**2 * irx2 + st**2 * iry2
        qb = (2.0 * ct) * (dd * irx2)
        qc = dd**2 * irx2 - 1.0
        disc = qb**2 - 4.0 * qa * qc
        root = np.sqrt(np.maximum(disc, 0.0))
        half_inv = 0.5 / qa
        lo = np.clip((-qb - root) * half_inv, 0.0, rr)
        hi = np.clip((-qb + root) * half_inv, 0.0, rr)
        area = np.where(disc > 0, hi**2 - lo**2, 0.0)
        out[ok] = area.sum(axis=1) * (np.pi / n_theta)
    return out.reshape(shape)


def _rv_volume(heart_kw: dict, rv_scale: np.ndarray, n_z: int, n_theta: int) -> np.ndarray:
    """RV cavity volume (mm3) per frame for the given scales."""
    h = Heart(rv_scale=rv_scale, **heart_kw)
    zb = h.z_base
    u = np.linspace(0.0, 1.0, n_z)
    z = zb[None, :] - u[:, None] * h.rv_length[None, :]  # (n_z, T)
    r = h.radii(z)
    area = np.pi * r["rv_x"] * r["rv_y"] - ellipse_disc_overlap(
        r["rv_x"], r["rv_y"], r["rv_d"], r["r_out"], n_theta
    )
    return np.trapezoid(area, dx=1.0, axis=0) * (h.rv_length / (n_z - 1))


def build_heart(
    lv_curve_ml: np.ndarray,
    lvm_g: float,
    rv_curve_ml: np.ndarray,
    rng: np.random.Generator,
    sphericity: float | None = None,
) -> Heart:
    """Fit the geometry to per-frame LV and RV volume curves (frame 0 = ED, minimum = ES)."""
    lv = np.asarray(lv_curve_ml, dtype=float) * 1000.0  # mm3
    rv = np.asarray(rv_curve_ml, dtype=float) * 1000.0
    edv, esv = lv.max(), lv.min()
    tau = float(rng.uniform(0.2, 0.3))
    k = 2.0 / 3.0 + tau - tau**3 / 3.0
    ratio = float(sphericity if sphericity is not None else rng.uniform(2.3, 2.7))
    a_ed = (edv / (np.pi * ratio * k)) ** (1.0 / 3.0)
    c_ed = ratio * a_ed
    c_es = c_ed - SLICE_SPACING_MM / (1.0 + tau)  # base descends one slice spacing
    c = c_es + (c_ed - c_es) * (lv - esv) / max(edv - esv, 1e-9)
    a = np.sqrt(lv / (np.pi * k * c))
    z_apex = -(1.0 + tau) * c_ed
    myo = lvm_g / MYOCARDIAL_DENSITY_G_PER_ML * 1000.0

    # Wall thickness per frame: bisection on the (monotone) shell volume.
    lo, hi = np.zeros_like(a), np.full_like(a, 60.0)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        shell = truncated_ellipsoid_volume(a + mid, c + APEX_THICKNESS_RATIO * mid, tau * c) - lv
        too_big = shell > myo
        hi = np.where(too_big, mid, hi)
        lo = np.where(too_big, lo, mid)
    t = 0.5 * (lo + hi)

    r_base_out = (a[0] + t[0]) * np.sqrt(1.0 - tau**2)
    heart_kw = dict(
        tau=tau,
        z_apex=z_apex,
        a=a,
        c=c,
        t=t,
        rv_length=float(rng.uniform(0.75, 0.88)) * (1.0 + tau) * c,
        rho_x=float(rng.uniform(0.8, 0.95)) * r_base_out,
        rho_y=float(rng.uniform(1.3, 1.45)) * r_base_out,
        kappa=float(rng.uniform(0.5, 0.6)),
        lv_volume=lv / 1000.0,
        myo_volume=myo / 1000.0,
        rv_volume=rv / 1000.0,
    )
    # RV scale per frame: secant iterations on log volume against log scale on a coarse
    # quadrature, then one step on the fine one, whose volume is recorded (it differs from the
    # coarse by well under 1 %, so one step leaves a residual far below the population's spread).
    target = np.log(rv)
    s = np.ones_like(a)
    for n_z, n_theta, iters in ((41, 96, 8), (121, _N_THETA, 0)):
        s0 = s
        f0 = np.log(np.maximum(_rv_volume(heart_kw, s0, n_z, n_theta), 1.0)) - target
        s1 = s0 * np.exp(-f0 / 2.0)  # volume grows about as s^2
        for _ in range(iters):
            f1 = np.log(np.maximum(_rv_volume(heart_kw, s1, n_z, n_theta), 1.0)) - target
            if np.max(np.abs(f1)) < 1e-5:
                break
            slope = np.where(np.abs(f1 - f0) > 1e-12, (f1 - f0) / np.log(s1 / s0 + 1e-300), 2.0)
            slope = np.clip(np.nan_to_num(slope, nan=2.0), 0.5, 5.0)
            s0, f0, s1 = s1, f1, s1 * np.exp(-f1 / slope)
        s = s1
    fine = _rv_volume(heart_kw, s, 121, _N_THETA) / 1000.0
    return Heart(rv_scale=s, **{**heart_kw, "rv_volume": fine})


def wall_thickness(heart: Heart, z_slices: np.ndarray, frame: int = 0) -> np.ndarray:
    """In-plane wall thickness (mm) at each slice centre where the LV cavity is present."""
    r = heart.radii(np.asarray(z_slices, dtype=float)[:, None])
    r_in, r_out = r["r_in"][:, frame], r["r_out"][:, frame]
    return (r_out - r_in)[r_in > 0]
