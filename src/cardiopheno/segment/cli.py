"""``cardiopheno segment`` (one scan) and ``cardiopheno train-segmentation``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from cardiopheno.views import VIEWS

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    """``segment`` and ``train-segmentation``."""
    _add_segment_parser(subparsers)
    _add_train_parser(subparsers)


def _add_segment_parser(subparsers) -> None:
    seg = subparsers.add_parser(
        "segment",
        help="segment a cine of one view (3D or 4D NIfTI): short axis by default",
        description="Write a uint8 label map with the input's shape and affine, in the view's "
        "ukbb_cardiac convention: sa 1 LV cavity, 2 LV myocardium, 3 RV cavity; la_2ch 1 LA; "
        "la_4ch 1 LV cavity, 2 LV myocardium, 3 RV, 4 LA, 5 RA (seg4_la_4ch); ao 1 ascending, "
        "2 descending aorta.",
    )
    seg.add_argument("--input", required=True, help="NIfTI cine (X x Y x slices [x frames])")
    seg.add_argument(
        "--reference",
        default=None,
        metavar="ED.nii.gz",
        help="the cine's first frame (end-diastole; 3D, or a cine whose first frame is taken) "
        "on --input's grid, when --input is a later frame given alone, as ACDC and M&Ms give ED "
        "and ES as separate files: the short-axis model reads each slice's twin in it. Without "
        "it a 3D --input is its own reference (a warning says so)",
    )
    seg.add_argument("--output", required=True, help="label map to write (.nii.gz)")
    seg.add_argument("--checkpoint", default=None, help="model checkpoint (default: shipped model)")
    seg.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    seg.add_argument(
        "--slice-batch", type=int, default=None, help="slices per network call (32 CPU, 256 GPU)"
    )
    seg.add_argument("--no-tta", action="store_true", help="skip test-time augmentation")
    seg.add_argument(
        "--flip-ensemble",
        type=int,
        default=1,
        choices=range(4),
        help="flipped copies averaged with the prediction (0 none, 1 default, up to 3)",
    )
    seg.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    seg.add_argument(
        "--view",
        default="sa",
        choices=list(VIEWS),
        help="the cine's view (sa, la_2ch, la_4ch, ao): chooses the network and labels",
    )
    seg.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "float32", "bfloat16", "float16"),
        help="network arithmetic (auto: float16 on GPU, float32 on CPU; bfloat16 is faster on AMX CPUs)",
    )
    seg.add_argument(
        "--convention",
        default="ukbb",
        choices=("ukbb", "acdc"),
        help="endocardial convention of the short-axis labels: ukbb (default; UK Biobank's "
        "smooth endocardium, trabeculae and papillary muscles in the LV cavity) or acdc (the "
        "network's own labels, close to the blood as ACDC's experts draw)",
    )
    seg.set_defaults(func=run_segment)


def _add_train_parser(subparsers) -> None:
    tr = subparsers.add_parser(
        "train-segmentation",
        help="train the segmentation network (ACDC HDF5, NIfTI pairs, synthetic cohort)",
    )
    tr.add_argument("--out", required=True, help="output folder (checkpoints, history, caches)")
    _add_acdc_options(tr)
    _add_generated_source_options(tr)
    _add_training_options(tr)
    tr.set_defaults(func=run_train)


def _add_acdc_options(tr: argparse.ArgumentParser) -> None:
    """ACDC as a source, and the weights of its slices (segment.training_sources.TrainingData)."""
    tr.add_argument("--acdc", default=None, help="ACDC folder (volumes/*.h5, reference.csv)")
    tr.add_argument("--acdc-train", default="1-12,21-32,41-52,61-72,81-92")
    tr.add_argument("--acdc-val", default="13-16,33-36,53-56,73-76,93-96")
    tr.add_argument(
        "--acdc-repeat", type=int, default=1, help="count the ACDC training slices N times"
    )
    tr.add_argument(
        "--acdc-es-repeat",
        type=int,
        default=0,
        help="count the ACDC training patients' end-systolic slices N times more",
    )
    tr.add_argument(
        "--acdc-basal-es-repeat",
        type=int,
        default=0,
        metavar="N",
        help="count each end-systolic slice from the base through the expert's first RV slice "
        "1 + N times (where the RV meets the atrium)",
    )
    tr.add_argument(
        "--acdc-both-scales",
        action="store_true",
        help="cache the ACDC training patients on the working grid (finest_pixel_mm) as well as "
        "on the pixel_mm grid; both copies count as the --acdc-*-repeat options say",
    )


def _add_generated_source_options(tr: argparse.ArgumentParser) -> None:
    """The sources beside ACDC: NIfTI pairs, the synthetic cohort, rendered aortas, resliced
    whole-heart anatomies."""
    tr.add_argument(
        "--nifti-manifest",
        default=None,
        help="CSV: eid,image,label[,reference] (NIfTI pairs, paths relative to the CSV). Each "
        "frame's phase reference (the short-axis model's extra input) is the image's first "
        "frame; for ED and ES given as separate 3D files (ACDC, M&Ms), give each ES row its ED "
        "image in 'reference' (the ED row may leave it empty), or stack the two into one "
        "[ED, ES] cine",
    )
    tr.add_argument("--synthetic", default=None, help="synthetic cohort folder (cardiopheno.synth)")
    tr.add_argument("--synthetic-frames", type=int, default=6)
    tr.add_argument(
        "--synthetic-aorta",
        type=int,
        default=0,
        metavar="N",
        help="N aortic cines rendered on the fly with partial-volume (soft) targets (view ao)",
    )
    tr.add_argument("--synthetic-aorta-seed", type=int, default=103)
    tr.add_argument(
        "--wholeheart",
        action="append",
        default=[],
        metavar="PATH",
        help="a real whole-heart anatomy resliced along the view's plane with random intensities "
        "(long-axis views): a label NIfTI in MM-WHS numbering or a folder of blood-pool STL "
        "surfaces (../shared/data/wholeheart); repeat for several",
    )
    tr.add_argument(
        "--wholeheart-slices", type=int, default=1000, metavar="N", help="slices per anatomy"
    )


def _add_training_options(tr: argparse.ArgumentParser) -> None:
    """The loss, prebuilt caches, schedule, network, view and augmentation (TrainConfig)."""
    tr.add_argument(
        "--area-weight", type=float, default=1.0, help="area term of the soft-target loss"
    )
    tr.add_argument("--cache", action="append", default=[], help="prebuilt training cache .npz")
    tr.add_argument("--val-cache", action="append", default=[], help="prebuilt validation cache")
    tr.add_argument("--epochs", type=int, default=100)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=2e-3)
    tr.add_argument("--workers", type=int, default=0)
    tr.add_argument("--max-minutes", type=float, default=None)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--network",
        default=None,
        help='JSON, e.g. {"channels": [16,32,64,128,256]}; {"context": 1}: 2.5D input (each slice '
        "with its neighbours)",
    )
    tr.add_argument("--init", default=None, help="initial weights (checkpoint) for fine-tuning")
    tr.add_argument(
        "--patch", type=int, default=None, help="train on random patches of this size (pixels)"
    )
    tr.add_argument(
        "--view",
        default="sa",
        choices=list(VIEWS),
        help="view to train (labels, synthetic images and default network grid; default sa)",
    )
    tr.add_argument(
        "--augment",
        default="full",
        choices=["full", "exact", "none"],
        help="full: geometric and intensity augmentation; exact: only flips, quarter turns and "
        "integer shifts (labels never resampled), for a last low-learning-rate stage",
    )
    tr.add_argument("--no-resume", action="store_true", help="start afresh even if last.pt exists")


def check_input(image: str, view: str) -> list[str]:
    """The input contract on the cine to segment: raise ``InputError`` (file, value, expected)
    when it cannot be segmented; return warnings a person should see (near-blank, unlike the
    view)."""
    from cardiopheno.io.contract import image_findings
    from cardiopheno.io.nifti import load_cine

    cine = load_cine(image)
    found = image_findings(cine.data, cine.spacing, image, view)
    found.raise_errors()
    return found.warnings


def run_segment(args) -> int:
    from cardiopheno.io.areas import areas_path
    from cardiopheno.io.contract import readable, refuse_bad_output, refuse_overwriting_inputs
    from cardiopheno.io.nifti import ImageReadError
    from cardiopheno.segment.infer import ComputeOptions, PassOptions, Segmenter, StepOptions
    from cardiopheno.segment.network import CheckpointError

    try:
        refuse_bad_output(args.output, (".nii.gz", ".nii"))
        refuse_overwriting_inputs(
            [args.output, areas_path(args.output)], [args.input, args.checkpoint]
        )
        segmenter = Segmenter(
            args.checkpoint,
            args.device,
            args.view,
            compute=ComputeOptions(
                slice_batch=args.slice_batch, precision=args.precision, threads=args.threads
            ),
            steps=StepOptions(convention=args.convention),
            passes=PassOptions(tta=not args.no_tta, flip_ensemble=args.flip_ensemble),
        )
        if args.reference:
            refuse_overwriting_inputs([args.output], [args.reference])
        warnings = [
            *check_input(args.input, args.view),
            segmenter.lone_frame_warning(args.input, args.reference),
        ]
        for warning in filter(None, warnings):
            print(f"cardiopheno segment: warning: {warning}", file=sys.stderr)
        seg = segmenter.segment_file(args.input, args.output, reference=args.reference)
        if not seg.labels.any():
            print(
                f"cardiopheno segment: warning: {args.output}: the label map is empty (no "
                f"{args.view} structure found in {args.input})",
                file=sys.stderr,
            )
    except (ImageReadError, CheckpointError, RuntimeError, ValueError, OSError) as exc:
        print(f"cardiopheno segment: error: {readable(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # anything else: still one readable line (-v logs the traceback)
        log.debug("traceback", exc_info=True)
        print(f"cardiopheno segment: error: {type(exc).__name__}: {readable(exc)}", file=sys.stderr)
        return 2
    log.info(
        "wrote %s %s; TTA Dice %s",
        args.output,
        seg.labels.shape,
        {k: round(v, 3) for k, v in seg.tta.items()},
    )
    return 0


def run_train(args) -> int:
    from cardiopheno.segment.network import CheckpointError, NetworkConfig
    from cardiopheno.segment.train import TrainConfig, train_from_sources
    from cardiopheno.segment.training_sources import TrainingData
    from cardiopheno.segment.transforms import PreprocessConfig

    network = NetworkConfig().to_dict()
    if args.network:
        network.update(json.loads(args.network))
    data = TrainingData(
        acdc_root=args.acdc,
        acdc_train=args.acdc_train,
        acdc_val=args.acdc_val,
        acdc_repeat=args.acdc_repeat,
        acdc_es_repeat=args.acdc_es_repeat,
        acdc_basal_es_repeat=args.acdc_basal_es_repeat,
        acdc_both_scales=args.acdc_both_scales,
        nifti_manifest=args.nifti_manifest,
        synthetic_cohort=args.synthetic,
        synthetic_frames=args.synthetic_frames,
        synthetic_aorta=args.synthetic_aorta,
        synthetic_aorta_seed=args.synthetic_aorta_seed,
        wholeheart=args.wholeheart,
        wholeheart_slices=args.wholeheart_slices,
        wholeheart_seed=args.seed,
        caches=args.cache,
        val_caches=args.val_cache,
        view=args.view,
    )
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        num_workers=args.workers,
        seed=args.seed,
        max_minutes=args.max_minutes,
        device=args.device,
        network=network,
        init_checkpoint=args.init,
        view=args.view,
        patch=args.patch,
        area_weight=args.area_weight,
        augment=args.augment,
    )
    pre_cfg = PreprocessConfig(**VIEWS[args.view].preprocess)
    try:
        result = train_from_sources(data, args.out, cfg, pre_cfg, resume=not args.no_resume)
    except CheckpointError as exc:  # --init or a last.pt to resume that is not plain data
        print(f"cardiopheno train-segmentation: error: {exc}", file=sys.stderr)
        return 2
    log.info("best mean validation Dice %.4f (%s)", result["best_mean_dice"], result["best"])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run these subcommands alone (``python -m cardiopheno.segment.cli``), without importing the
    other stages' command modules (used on machines with only the segmentation dependencies)."""
    parser = argparse.ArgumentParser(prog="cardiopheno-segment")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
