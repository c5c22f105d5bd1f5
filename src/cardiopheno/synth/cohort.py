"""Write the synthetic demo cohort in the layout a user brings, plus its ground truth.

Layout (docs/data-contracts.md): ``manifest.csv`` (eid, sa), ``covariates.csv``, ``diagnoses.csv``,
``deaths.csv``, ``subjects/<eid>/sa.nii.gz`` and ``truth/`` (idps.parquet, volume_curves.parquet,
labels/<eid>.nii.gz, effects.parquet, faults.parquet, README.md). Each subject is generated from
its own seeded generator (seed, index), so the bytes do not depend on ``n_jobs``; NIfTI files are
gzipped with mtime 0 (nibabel's deterministic writer) so the same seed gives identical files.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from cardiopheno.definitions import MYOCARDIAL_DENSITY_G_PER_ML
from cardiopheno.io.atomic import atomic_path
from cardiopheno.io.nifti import save_nifti
from cardiopheno.io.tables import ColumnSpec, write_table
from cardiopheno.synth.aorta import curve_columns as aorta_curve_columns
from cardiopheno.synth.aorta import simulate_aorta
from cardiopheno.synth.aorta import truth_columns as aorta_truth_columns
from cardiopheno.synth.faults import (
    FAULT_TYPES,
    FILE_FAULTS,
    apply_array_fault,
    apply_file_fault,
    assign_faults,
)
from cardiopheno.synth.imaging import simulate_subject
from cardiopheno.synth.longaxis import LONG_AXIS_VIEWS
from cardiopheno.synth.motion import strain_truth_specs
from cardiopheno.synth.outcomes import Outcomes, outcome_model_markdown, sample_outcomes
from cardiopheno.synth.population import population_model_markdown, sample_population

log = logging.getLogger(__name__)

COVARIATE_COLUMNS = [
    "eid", "age", "sex", "height_cm", "weight_kg", "sbp", "dbp", "heart_rate", "central_pp",
]  # fmt: skip
VOXEL_TOLERANCE = {  # stated agreement of voxelised with analytic truth (relative)
    "LVEDV": 0.03,
    "LVESV": 0.05,
    "LVM": 0.05,
    "RVEDV": 0.05,
    "RVESV": 0.08,
}

IDP_SPECS = {
    "LVEDV": ("mL", "LV end-diastolic volume"),
    "LVESV": ("mL", "LV end-systolic volume"),
    "LVSV": ("mL", "LV stroke volume"),
    "LVEF": ("%", "LV ejection fraction"),
    "LVCO": ("L/min", "LV cardiac output (SV x HR)"),
    "LVM": ("g", f"LV myocardial mass at ED ({MYOCARDIAL_DENSITY_G_PER_ML} g/mL)"),
    "RVEDV": ("mL", "RV end-diastolic volume (at the LV ED frame)"),
    "RVESV": ("mL", "RV end-systolic volume (at the LV ES frame)"),
    "RVSV": ("mL", "RV stroke volume"),
    "RVEF": ("%", "RV ejection fraction"),
    "LVEDVi": ("mL/m2", "LVEDV / BSA (Mosteller)"),
    "LVESVi": ("mL/m2", "LVESV / BSA (Mosteller)"),
    "LVSVi": ("mL/m2", "LVSV / BSA (Mosteller)"),
    "LVMi": ("g/m2", "LVM / BSA (Mosteller)"),
    "RVEDVi": ("mL/m2", "RVEDV / BSA (Mosteller)"),
    "RVESVi": ("mL/m2", "RVESV / BSA (Mosteller)"),
    "RVSVi": ("mL/m2", "RVSV / BSA (Mosteller)"),
    "LV_PER": ("mL/s", "LV peak ejection rate"),
    "LV_PFR_E": ("mL/s", "LV peak early filling rate"),
    "LV_PFR_A": ("mL/s", "LV peak atrial filling rate"),
}


def _idp_columns() -> dict[str, ColumnSpec]:
    cols = {}
    for name, (unit, desc) in IDP_SPECS.items():
        cols[name] = ColumnSpec(
            unit,
            f"{desc}: from the voxelised truth labels (voxel count x pixel area x slice spacing)"
            + ("; rates by central differences of the voxel volume curve" if "_P" in name else ""),
        )
        cols[f"{name}_analytic"] = ColumnSpec(
            unit, f"{desc}: analytic value of the continuous phantom geometry"
        )
    cols.update(
        {
            "HR": ColumnSpec("bpm", "heart rate (RR = frame interval x frames)"),
            "WT_global": ColumnSpec(
                "mm", "analytic mean in-plane LV wall thickness at ED over slices with LV cavity"
            ),
            "WT_max": ColumnSpec("mm", "analytic maximum in-plane LV wall thickness at ED"),
            "pixel_mm": ColumnSpec("mm", "in-plane pixel size"),
            "frame_interval_ms": ColumnSpec("ms", "time between frames (pixdim[4])"),
            "intensity_scale": ColumnSpec("", "blood-pool intensity before bias and noise"),
            "noise_sigma": ColumnSpec("", "Rician noise sigma (image intensity units)"),
            "bsa_m2": ColumnSpec("m2", "body surface area (Mosteller)"),
            "LA_passive_share": ColumnSpec(
                "", "share of LA emptying that is passive (conduit) rather than active (booster)"
            ),
            "hypokinesis_reduction": ColumnSpec(
                "", "planned fractional reduction of endocardial excursion (0: no region)"
            ),
        }
    )
    for chamber in ("LA", "RA"):
        for name, (unit, desc) in {
            "V_max": ("mL", "maximal volume"),
            "V_min": ("mL", "minimal volume"),
            "SV": ("mL", "stroke volume (max - min)"),
            "EF": ("%", "ejection fraction"),
        }.items():
            cols[f"{chamber}{name}"] = ColumnSpec(
                unit, f"{chamber} {desc} of the 3D phantom (analytic truncated ellipsoid)"
            )
    cols.update({_aorta_truth_key(k): v for k, v in aorta_truth_columns().items()})
    for tag in ("LA_2ch", "LA_4ch", "RA_4ch"):
        cols[f"{tag}_plane_offset_mm"] = ColumnSpec(
            "mm", f"distance of the {tag[:2]} centre from the {tag[3:]} view's plane"
        )
    cols.update(strain_truth_specs())
    return cols


def _curve_columns() -> dict[str, ColumnSpec]:
    return {
        "time_ms": ColumnSpec("ms", "frame time from the first frame"),
        "LV_cavity_ml": ColumnSpec("mL", "LV cavity volume from the truth labels"),
        "LV_cavity_ml_analytic": ColumnSpec("mL", "LV cavity volume of the continuous phantom"),
        "LV_myocardium_ml": ColumnSpec("mL", "LV myocardial volume from the truth labels"),
        "LV_myocardium_ml_analytic": ColumnSpec("mL", "LV myocardial volume of the phantom"),
        "RV_cavity_ml": ColumnSpec("mL", "RV cavity volume from the truth labels"),
        "RV_cavity_ml_analytic": ColumnSpec("mL", "RV cavity volume of the phantom (quadrature)"),
        "Ecc_global": ColumnSpec("%", "global circumferential strain of the phantom (ED = 0)"),
        "Err_global": ColumnSpec("%", "global radial strain of the phantom (ED = 0)"),
    }


SYNTHETIC_VIEWS = (*LONG_AXIS_VIEWS, "ao")


def synthetic_views() -> set[str]:
    """The views beside the short axis that a generated cohort has (manifest columns)."""
    return set(SYNTHETIC_VIEWS)


def _aorta_truth_key(name: str) -> str:
    """Aortic truth columns in the one truth table: IDPs keep their names, acquisition details
    (pixel size, noise, ...) get an ``ao_`` prefix so they do not clash with the short axis's."""
    return name if name.startswith(("AAo_", "DAo_", "central_pp")) else f"ao_{name}"


def _atrial_curve_columns(names) -> dict[str, ColumnSpec]:
    """Units and descriptions of the atrial truth curves (see synth.atria.atrial_truth_tables)."""
    cols = {"time_ms": ColumnSpec("ms", "time since the cine's first frame (ventricular ED)")}
    for name in names:
        if name.endswith("_volume_ml_analytic"):
            cols[name] = ColumnSpec("mL", f"{name[:2]} volume of the 3D phantom (analytic)")
        elif name.endswith("_area_mm2"):
            cols[name] = ColumnSpec("mm2", "atrial area in the view's truth labels")
        elif name.endswith("_area_mm2_analytic"):
            cols[name] = ColumnSpec("mm2", "area of the plane's cut through the atrium (analytic)")
        elif name.endswith("_length_mm_analytic"):
            cols[name] = ColumnSpec(
                "mm", "height of that cut above the valve plane (analytic long-axis length)"
            )
    return cols


def _make_subject(args: tuple) -> tuple[dict, pd.DataFrame, dict | None]:
    """Worker: render, write sa.nii.gz and the truth labels, apply the fault if any."""
    out_dir, row, seed, index, fault, views = args
    out_dir = Path(out_dir)
    eid = str(row["eid"])
    subject = simulate_subject(
        pd.Series(row), seed, index, tuple(v for v in views if v in LONG_AXIS_VIEWS)
    )
    label_path = out_dir / "truth" / "labels" / f"{eid}.nii.gz"
    save_nifti(label_path, subject.labels, subject.affine, subject.zooms)
    sa_path = out_dir / "subjects" / eid / "sa.nii.gz"
    record = None
    data, affine, zooms = subject.image, subject.affine, subject.zooms
    if fault is not None:
        rng = np.random.default_rng([seed, index, 0xBAD])
        res = apply_array_fault(
            fault,
            data,
            affine,
            zooms,
            rng,
            subject.truth["intensity_scale"],
            subject.truth["ED_frame"],
        )
        data, affine, zooms = res.data, res.affine, res.zooms
        record = {"eid": eid, "fault": fault, "detail": res.detail,
                  "labels_match_image": res.labels_match_image}  # fmt: skip
    save_nifti(sa_path, data, affine, zooms)
    if fault in FILE_FAULTS:
        record["detail"] = apply_file_fault(fault, sa_path, rng)
    for view, img in subject.views.items():
        save_nifti(out_dir / "subjects" / eid / f"{view}.nii.gz", img.image, img.affine, img.zooms)
        save_nifti(
            out_dir / "truth" / "labels" / f"{eid}_{view}.nii.gz", img.labels, img.affine, img.zooms
        )
    truth = {**subject.truth, "bsa_m2": float(row["bsa_m2"])}
    aortic_curves = None
    if "ao" in views:
        ao = simulate_aorta(pd.Series(row), seed, index)
        save_nifti(out_dir / "subjects" / eid / "ao.nii.gz", ao.image, ao.affine, ao.zooms)
        save_nifti(
            out_dir / "truth" / "labels" / f"{eid}_ao.nii.gz", ao.labels, ao.affine, ao.zooms
        )
        truth.update({_aorta_truth_key(k): v for k, v in ao.truth.items() if k != "eid"})
        aortic_curves = ao.curves
    return truth, subject.curves, record, subject.atrial_curves, aortic_curves


def write_record_tables(out_dir: Path, pop: pd.DataFrame, outcomes: Outcomes) -> None:
    """``covariates.csv``, ``diagnoses.csv`` and ``deaths.csv`` (ISO dates) as a user brings them."""
    covariates = pop[COVARIATE_COLUMNS].assign(
        imaging_date=pd.to_datetime(pop["imaging_date"]).dt.strftime("%Y-%m-%d")
    )
    diagnoses = outcomes.diagnoses.assign(date=outcomes.diagnoses["date"].dt.strftime("%Y-%m-%d"))
    deaths = outcomes.deaths.assign(date=outcomes.deaths["date"].dt.strftime("%Y-%m-%d"))
    for name, df in (
        ("covariates.csv", covariates),
        ("diagnoses.csv", diagnoses),
        ("deaths.csv", deaths),
    ):
        with atomic_path(out_dir / name) as tmp:
            df.to_csv(tmp, index=False)


POPULATION_SPECS = {  # the population table's measured columns (the IDPs: IDP_SPECS)
    "age": ("years", "age at imaging"),
    "height_cm": ("cm", "height"),
    "weight_kg": ("kg", "weight"),
    "bsa_m2": ("m2", "body surface area (Mosteller)"),
    "sbp": ("mmHg", "systolic blood pressure"),
    "dbp": ("mmHg", "diastolic blood pressure"),
    "heart_rate": ("bpm", "heart rate"),
    "central_pp": ("mmHg", "central (aortic) pulse pressure, as UK Biobank field 12678"),
    "AAo_min_area": ("mm2", "true ascending aortic lumen area, diastolic"),
    "AAo_max_area": ("mm2", "true ascending aortic lumen area, systolic"),
    "AAo_distensibility": ("10-3/mmHg", "true ascending aortic distensibility"),
    "DAo_min_area": ("mm2", "true descending aortic lumen area, diastolic"),
    "DAo_max_area": ("mm2", "true descending aortic lumen area, systolic"),
    "DAo_distensibility": ("10-3/mmHg", "true descending aortic distensibility"),
}


def generate_cohort(
    out_dir: str | os.PathLike,
    n_subjects: int = 100,
    seed: int = 0,
    fault_fraction: float = 0.05,
    n_jobs: int = 2,
    views: tuple[str, ...] = SYNTHETIC_VIEWS,
) -> Path:
    """Generate the cohort under ``out_dir``; returns the manifest path."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pop = sample_population(n_subjects, seed)
    outcomes = sample_outcomes(pop, seed)
    faults = assign_faults(n_subjects, seed, fault_fraction)
    rows = pop.to_dict("records")
    jobs = [(str(out_dir), rows[i], seed, i, faults.get(i), views) for i in range(n_subjects)]
    log.info(
        "generating %d subjects (seed %d, %d faulty) into %s with %d jobs",
        n_subjects, seed, len(faults), out_dir, n_jobs,
    )  # fmt: skip
    results = _render_subjects(jobs, n_jobs)
    write_record_tables(out_dir, pop, outcomes)
    truth = pd.DataFrame([r[0] for r in results])
    meta = {"seed": str(seed), "n_subjects": str(n_subjects), "fault_fraction": str(fault_fraction)}
    _write_truth_tables(out_dir / "truth", results, truth, pop, outcomes, meta)
    with atomic_path(out_dir / "truth" / "README.md") as tmp:
        tmp.write_text(truth_readme(seed, n_subjects, fault_fraction, truth))
    # The manifest last: its presence means the cohort is complete.
    manifest_path = out_dir / "manifest.csv"
    with atomic_path(manifest_path) as tmp:
        _manifest(pop, views).to_csv(tmp, index=False)
    log.info("cohort of %d subjects written in %.1f s", n_subjects, time.perf_counter() - t0)
    return manifest_path


def _render_subjects(jobs: list[tuple], n_jobs: int) -> list[tuple]:
    """:func:`_make_subject` over the jobs, in a process pool when ``n_jobs > 1``; the results
    in job order either way."""
    if n_jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            return list(pool.map(_make_subject, jobs, chunksize=1))
    return [_make_subject(job) for job in jobs]


def _manifest(pop: pd.DataFrame, views: tuple[str, ...]) -> pd.DataFrame:
    """eid and one relative file path per view (``subjects/<eid>/<view>.nii.gz``)."""
    return pd.DataFrame(
        {
            "eid": pop["eid"],
            **{v: [f"subjects/{e}/{v}.nii.gz" for e in pop["eid"]] for v in ("sa", *views)},
        }
    )


def _write_truth_tables(
    tdir: Path,
    results: list[tuple],
    truth: pd.DataFrame,
    pop: pd.DataFrame,
    outcomes: Outcomes,
    meta: dict[str, str],
) -> None:
    """idps, aortic, volume and atrial curves, effects, faults and population parquet files."""
    curves = pd.concat([r[1] for r in results], ignore_index=True)
    atrial = [r[3] for r in results if r[3] is not None]
    aortic = [r[4] for r in results if r[4] is not None]
    fault_rows = [r[2] for r in results if r[2] is not None]
    fault_table = pd.DataFrame(
        fault_rows, columns=["eid", "fault", "detail", "labels_match_image"]
    ).astype({"labels_match_image": bool})
    write_table(truth, tdir / "idps.parquet", columns=_idp_columns(), extra=meta)
    if aortic:
        write_table(
            pd.concat(aortic, ignore_index=True),
            tdir / "aortic_curves.parquet",
            columns=aorta_curve_columns(),
            extra=meta,
        )
    write_table(curves, tdir / "volume_curves.parquet", columns=_curve_columns(), extra=meta)
    if atrial:
        write_table(
            pd.concat(atrial, ignore_index=True),
            tdir / "atrial_curves.parquet",
            columns=_atrial_curve_columns(pd.concat(atrial[:1]).columns),
            extra=meta,
        )
    write_table(
        outcomes.effects,
        tdir / "effects.parquet",
        columns={"estimate": ColumnSpec("see scale", "true coefficient of the generating model")},
        extra=meta,
    )
    write_table(fault_table, tdir / "faults.parquet", extra=meta)
    write_table(pop, tdir / "population.parquet", columns=_population_columns(pop), extra=meta)


def _population_columns(pop: pd.DataFrame) -> dict[str, ColumnSpec]:
    """Units and descriptions of the population table's columns, for write_table."""
    cols = {c: ColumnSpec(u, d) for c, (u, d) in POPULATION_SPECS.items()}
    cols.update(
        {
            c: ColumnSpec(u, "true population-model value")
            for c, (u, _) in IDP_SPECS.items()
            if c in pop
        }
    )
    return cols


def truth_readme(seed: int, n: int, fault_fraction: float, truth: pd.DataFrame) -> str:
    from cardiopheno.synth import anatomy, faults, imaging, motion

    exact = truth[truth["analytic_volumes_exact"].astype(bool)] if len(truth) else truth
    worst = {
        k: float(np.max(np.abs(exact[k] / exact[f"{k}_analytic"] - 1.0))) if len(exact) else 0.0
        for k in VOXEL_TOLERANCE
    }
    lines = [
        "# Ground truth of this synthetic cohort",
        "",
        f"Generated by `cardiopheno.synth` with seed {seed}, {n} subjects, fault fraction "
        f"{fault_fraction}. Regenerate: `cardiopheno synth --n {n} --seed {seed} --out DIR "
        f"--fault-fraction {fault_fraction}` (byte-identical images and tables).",
        "",
        "## Files",
        "",
        "- `idps.parquet`: one row per subject. Each IDP has a voxelised value (`LVEDV`: from",
        "  `labels/<eid>.nii.gz`, voxel count x in-plane pixel area x slice spacing, ES/ED frames",
        "  as recorded) and the analytic value of the continuous phantom (`LVEDV_analytic`).",
        "  `ED_frame`, `ES_frame` (0-based), `WT_global`/`WT_max` (analytic in-plane wall",
        "  thickness at ED, mean/max over slices containing LV cavity), `HR`, indexed values by BSA.",
        "  Peak rates (`LV_PER`, `LV_PFR_E`, `LV_PFR_A`): analytic from the continuous volume",
        "  curve; voxelised by central differences of the voxel volume curve, which steps when the",
        "  base crosses a 10 mm slab, so the voxelised rates overestimate (compare estimators",
        "  against `volume_curves.parquet` rather than against these).",
        "- `volume_curves.parquet`: per subject and frame, LV cavity, LV myocardium and RV cavity",
        "  volumes from the labels and from the phantom, and the truth global strain curves",
        "  `Ecc_global`, `Err_global` (%, ED = 0).",
        "- Strain truth in `idps.parquet`: peak `Ecc_AHA_1`..`Ecc_AHA_16`, `Ecc_global`,",
        "  `Err_AHA_*`, `Err_global` from the phantom's material line elements (`synth.motion`),",
        "  `hypokinetic_segments` (truth: peak Ecc >= 30 % below the same heart without the",
        "  region), `hypokinesis_planned`, `hypokinesis_reduction`, `strain_slices` and",
        "  `analytic_volumes_exact` (False where a hypokinetic region changes the volumes: the",
        "  voxelised values, from the labels, stay exact; the `*_analytic` ones ignore the region).",
        "- `labels/<eid>.nii.gz`: 4D truth labels (0 background, 1 LV cavity, 2 LV myocardium,",
        "  3 RV cavity; papillary muscles belong to the cavity) on the clean image's grid. Not listed",
        "  in the manifest (a `seg_sa` column would mean 'skip segmentation').",
        "- `effects.parquet`: the true coefficients (analysis association | phewas | survival).",
        "- `faults.parquet`: eid, fault, detail, labels_match_image.",
        "- `population.parquet`: the population table with pathology and the target IDPs.",
        "",
        "## Voxelised vs analytic agreement",
        "",
        "The base plane lies on a slab boundary at ED and at ES (the base descends exactly one",
        "slice spacing), so the voxelised volumes agree with the analytic ones there. Stated",
        "tolerances (relative) and the worst case in this cohort (subjects without a",
        "hypokinetic region; with one, only the voxelised values are exact):",
        "",
    ]
    for k, tol in VOXEL_TOLERANCE.items():
        lines.append(f"- {k}: <= {tol:.0%} (worst here {worst[k]:.2%})")
    lines += [
        "",
        "## Phantom and images (`cardiopheno.synth.anatomy`, `cardiopheno.synth.imaging`)",
        "",
        (anatomy.__doc__ or "").strip(),
        "",
        (imaging.__doc__ or "").strip(),
        "",
        (motion.__doc__ or "").strip(),
        "",
        f"Acquisition: matrix 128-160 square, pixel 1.7-1.9 mm, slice thickness "
        f"{anatomy.SLICE_THICKNESS_MM} mm at {anatomy.SLICE_SPACING_MM} mm spacing, "
        f"{imaging.MIN_SLICES}-{imaging.MAX_SLICES} slices from base (slice 0) to apex, "
        f"{imaging.MIN_FRAMES}-{imaging.MAX_FRAMES} frames; pixdim[4] = RR / frames in ms, so",
        "HR = 60000 / (pixdim[4] x frames). About 20 % of cines are cyclically shifted so ED is",
        "not frame 0. int16 images; blood 250-1200 before bias; Rician noise 2.5-5 % of blood.",
        "",
        population_model_markdown(),
        outcome_model_markdown(),
        "## Faults (`cardiopheno.synth.faults`)",
        "",
        (faults.__doc__ or "").strip(),
        "",
        "Types: " + ", ".join(FAULT_TYPES) + ".",
        "",
    ]
    return "\n".join(lines)
