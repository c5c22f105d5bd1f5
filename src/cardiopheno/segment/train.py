"""Train the segmentation network on cached slices (see :mod:`cardiopheno.segment.data`).

MONAI augmentation (flips, rotation, scaling, translation, intensity scale/shift, gamma, noise,
bias field, blur), DiceCE loss, validation Dice per class (MONAI ``DiceMetric``, per volume) after
every epoch, best checkpoint kept, resumable from ``last.pt``. Uses CUDA when present (bf16
autocast) and the CPU otherwise.

Caches with soft targets (each pixel's share of each structure, the synthetic aorta's partial
volume) train on those instead (:class:`SoftTargetLoss`): the network's probabilities then
estimate the share, and their sum a sub-pixel area.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.losses import DiceCELoss, DiceLoss
from monai.metrics import DiceMetric
from monai.networks.utils import one_hot
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandLambdad,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSpatialCropd,
    ToTensord,
)
from monai.utils import set_determinism

from cardiopheno import RV_CAVITY
from cardiopheno.segment.checkpoints import read_checkpoint
from cardiopheno.segment.data import (
    SliceCache,
    acdc_es_volumes,
    acdc_patient_ids,
    basal_slices,
)
from cardiopheno.segment.network import (
    NetworkConfig,
    build_network,
    inflate_input_channels,
    resolve_device,
    save_checkpoint,
)
from cardiopheno.segment.transforms import PreprocessConfig, context_index
from cardiopheno.views import view_spec

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.2  # of subjects, when no explicit validation cache is given
    num_workers: int = 0
    seed: int = 0
    max_minutes: float | None = None  # stop (after a full epoch) when this budget is spent
    device: str = "auto"
    # "full" (True): the augmentation of train_transforms; "exact": only label-exact moves (flips,
    # quarter turns, integer shifts), no resampling or intensity change; "none" (False)
    augment: bool | str = "full"
    init_checkpoint: str | None = None  # start from these weights (fine-tuning), new schedule
    network: dict = field(default_factory=lambda: NetworkConfig().to_dict())
    view: str = "sa"  # which view's labels (cardiopheno.views): sets the output classes
    patch: int | None = None  # train on random patch x patch windows (None: whole slices)
    area_weight: float = 1.0  # weight of SoftTargetLoss's area term (soft-target caches only)


class SoftTargetLoss(torch.nn.Module):
    """Loss for soft targets (``B x C x H x W`` shares summing to 1): soft-label Dice (MONAI
    ``DiceLoss(soft_label=True)``) + cross-entropy against the shares, both minimised by
    probabilities equal to the shares, + ``area_weight`` x the mean relative error of each
    foreground class's summed probability in each image (the area the phenotype reads)."""

    def __init__(self, area_weight: float = 1.0):
        super().__init__()
        self.dice = DiceLoss(softmax=True, soft_label=True)
        self.area_weight = area_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.dice(logits, target) + torch.nn.functional.cross_entropy(logits, target)
        if self.area_weight:
            pred = torch.softmax(logits, dim=1)[:, 1:].sum(dim=(2, 3))
            true = target[:, 1:].sum(dim=(2, 3))
            loss = loss + self.area_weight * ((pred - true).abs() / (true + 1.0)).mean()
        return loss


def _reverse_slices(image, n: int) -> torch.Tensor:
    """The first ``n`` channels (a 2.5D input's slices) in reverse order; others stay."""
    image = torch.as_tensor(image)
    return torch.cat([torch.flip(image[:n], dims=(0,)), image[n:]])


AUGMENT_MODES = ("full", "exact", "none")


def augment_mode(augment: bool | str) -> str:
    """``augment`` as one of :data:`AUGMENT_MODES` (True/False: "full"/"none", older configs)."""
    mode = {True: "full", False: "none"}.get(augment, augment)
    if mode not in AUGMENT_MODES:
        raise ValueError(f"augment must be one of {', '.join(AUGMENT_MODES)}, got {augment!r}")
    return mode


def train_transforms(
    augment: bool | str = "full",
    patch: int | None = None,
    symmetric: bool = True,
    soft: bool = False,
    context: int = 0,
    reference: bool = False,
    canonical: bool = False,
) -> Compose:
    """Augmentation of ``{"image": CxHxW float in [0,1], "label": 1xHxW}`` dicts (MONAI; C = 1, or
    the slice and its neighbours for a 2.5D network); with
    ``patch``, the affine resamples straight onto a ``patch`` x ``patch`` window (a grid of the
    output's size: about half of training time went into full-size grids), shifted by up to a
    quarter patch (cheaper steps on large fields, and partly visible structures to learn from).
    Without ``symmetric`` (labels tied to the position in the chest, as the aorta's) no flips and
    rotations of at most 15 degrees. With ``soft``, the label is ``C x H x W`` shares and is
    interpolated bilinearly, so a structure's summed share scales with the image. With ``context``
    (2.5D input: the image's channels are neighbouring slices) their order is reversed half of
    the time, since stacks run base to apex on some scanners and apex to base on others. With
    ``reference`` the last channel is the slice at the first frame: it moves with the others.
    With ``canonical`` (a view turned into one orientation by its affine, segment.orientation)
    mirror flips along the first axis only and rotations of at most 45 degrees.

    ``augment="exact"`` keeps only the moves that map pixels onto pixels (flips, quarter turns,
    the patch's integer position), so no label boundary is re-drawn by interpolation and no
    intensity changes: a last, low-learning-rate stage that fits the labels as drawn."""
    keys = ["image", "label"]
    mode = augment_mode(augment)
    if mode == "none":
        return Compose([ToTensord(keys=keys)])
    crop = (
        [RandSpatialCropd(keys=keys, roi_size=(patch, patch), random_size=False)] if patch else []
    )
    flip_axes = ((0,) if canonical else (0, 1)) if symmetric else ()
    flips = [RandFlipd(keys=keys, prob=0.5, spatial_axis=a) for a in flip_axes]
    if context:
        reverse = functools.partial(_reverse_slices, n=2 * context + 1)
        flips.append(RandLambdad(keys="image", func=reverse, prob=0.5))
    if mode == "exact":
        turns = (
            [RandRotate90d(keys=keys, prob=0.75, max_k=3)] if symmetric and not canonical else []
        )
        return Compose([*flips, *turns, *crop, ToTensord(keys=keys)])
    return Compose(
        [
            *flips,
            RandAffined(
                keys=keys,
                prob=0.9,
                rotate_range=(
                    math.pi / 4 if canonical else math.pi if symmetric else math.pi / 12,
                ),
                scale_range=(0.3, 0.3),
                translate_range=(patch // 4, patch // 4) if patch else (20, 20),
                spatial_size=(patch, patch) if patch else None,
                mode=("bilinear", "bilinear" if soft else "nearest"),
                padding_mode="zeros",
            ),
            *crop,
            RandBiasFieldd(keys="image", prob=0.3, coeff_range=(0.0, 0.3)),
            RandAdjustContrastd(keys="image", prob=0.3, gamma=(0.6, 1.6)),
            RandScaleIntensityd(keys="image", prob=0.3, factors=0.2),
            RandShiftIntensityd(keys="image", prob=0.3, offsets=0.1),
            RandGaussianSmoothd(keys="image", prob=0.2, sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0)),
            RandGaussianNoised(keys="image", prob=0.3, std=0.05),
            ToTensord(keys=keys),
        ]
    )


def _inputs(cache: SliceCache, idx: np.ndarray, context: int, reference: bool) -> np.ndarray:
    """The network input of the slices ``idx`` of ``cache``, ``len(idx) x C x H x W`` in [0, 1]:
    each slice with its ``context`` neighbours (:func:`context_index`), then its ``reference``
    (the slice at the cine's first frame) when the network takes one."""
    x = cache.image[context_index(cache.volume, context)[idx]]
    if reference:
        if cache.reference is None:
            raise ValueError(
                "the network takes a reference channel but the slice cache has none: rebuild "
                "the caches (delete the .npz files) to store each slice's first frame"
            )
        x = np.concatenate([x, cache.reference[idx][:, None]], axis=1)
    return x.astype(np.float32) / 255.0


def _items(cache: SliceCache, context: int = 0, reference: bool = False) -> list[dict]:
    """Training dicts; with soft targets the label is background + the cached shares; the image
    is the network input of :func:`_inputs`."""
    if cache.soft is None:
        labels = [cache.label[i][None] for i in range(len(cache))]
    else:
        labels = []
        for i in range(len(cache)):
            fg = cache.soft[i].astype(np.float32) / 255.0
            total = fg.sum(axis=0, keepdims=True)
            fg = fg / np.maximum(total, 1.0)  # overlapping shares (rounding) never exceed 1
            labels.append(np.concatenate([1.0 - fg.sum(axis=0, keepdims=True), fg]))
    images = _inputs(cache, np.arange(len(cache)), context, reference)
    items = [{"image": images[i], "label": labels[i]} for i in range(len(cache))]
    if cache.repeats is None:
        return items
    return [items[i] for i in np.repeat(np.arange(len(cache)), cache.repeats)]


def split_by_subject(cache: SliceCache, val_fraction: float, seed: int):
    """Patient-level split: all slices of a subject fall on one side."""
    subjects = np.unique(cache.subject)
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(len(subjects) * val_fraction))) if len(subjects) > 1 else 0
    val_subjects = set(rng.choice(subjects, size=n_val, replace=False)) if n_val else set()
    is_val = np.isin(cache.subject, list(val_subjects))
    return cache.subset(~is_val), cache.subset(is_val)


@torch.inference_mode()
def validate(
    model,
    cache: SliceCache,
    device,
    batch_size: int = 64,
    view: str = "sa",
    context: int = 0,
    reference: bool = False,
) -> dict[str, float]:
    """Mean Dice per class over validation volumes (each frame a 3D volume of its slices)."""
    spec = view_spec(view)
    metric = DiceMetric(include_background=False, reduction="mean_batch", ignore_empty=True)
    model.eval()
    for vol in np.unique(cache.volume):
        idx = np.flatnonzero(cache.volume == vol)
        x = torch.from_numpy(_inputs(cache, idx, context, reference))
        preds = []
        for start in range(0, len(idx), batch_size):
            with _autocast(device):
                preds.append(model(x[start : start + batch_size].to(device)).argmax(1).cpu())
        pred = torch.cat(preds)  # Z x H x W
        truth = torch.from_numpy(cache.label[idx].astype(np.int64))
        metric(
            one_hot(pred.permute(1, 2, 0)[None, None], spec.n_classes),
            one_hot(truth.permute(1, 2, 0)[None, None], spec.n_classes),
        )
    dice = metric.aggregate().cpu().numpy()
    keys = [spec.keys[c] for c in spec.classes]
    return {k: float(v) for k, v in zip(keys, dice, strict=True)}


def _worker_init(worker_id: int) -> None:
    """MONAI's per-worker seeding, and one torch thread per worker (many workers each running
    a full thread pool would oversubscribe the CPU)."""
    from monai.data.utils import worker_init_fn

    torch.set_num_threads(1)
    worker_init_fn(worker_id)


def _autocast(device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def cosine_lr(cfg: TrainConfig, epoch: int, minutes: float) -> float:
    """Cosine decay over training progress: the fraction of epochs done or, with a time budget,
    of the budget spent, whichever is further (so a time-limited run still anneals)."""
    progress = epoch / max(1, cfg.epochs)
    if cfg.max_minutes:
        progress = max(progress, minutes / cfg.max_minutes)
    progress = min(1.0, progress)
    return cfg.learning_rate * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(
    train_cache: SliceCache,
    out_dir: str | os.PathLike,
    cfg: TrainConfig,
    val_cache: SliceCache | None = None,
    pre_cfg: PreprocessConfig | None = None,
    resume: bool = True,
    metadata: dict | None = None,
) -> dict:
    """Train; write ``last.pt`` every epoch, ``best.pt`` on a new best mean validation Dice and
    ``history.json``. With ``resume`` and an existing ``last.pt`` training continues from it."""
    augment_mode(cfg.augment)  # a bad value fails before any work
    # read as data only (a file that would run code is refused), before any work
    init_blob = read_checkpoint(cfg.init_checkpoint) if cfg.init_checkpoint else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pre_cfg = pre_cfg or PreprocessConfig()
    if val_cache is None:
        train_cache, val_cache = split_by_subject(train_cache, cfg.val_fraction, cfg.seed)
    if len(train_cache) == 0:
        raise ValueError("no training slices")
    set_determinism(seed=cfg.seed)
    device = resolve_device(cfg.device)
    net_cfg = NetworkConfig.from_dict(
        {**cfg.network, "out_channels": view_spec(cfg.view).n_classes}
    )
    model = build_network(net_cfg)
    if init_blob is not None:
        # weights of the same shape only: another view's model (another number of classes)
        # lends everything but its last layer
        own = model.state_dict()
        # a 2D model's input convolutions widened for 2.5D input (neighbours' weights 0)
        init = inflate_input_channels(init_blob["state_dict"], own)
        same = {k: v for k, v in init.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(same, strict=False)
        log.info("initialised %d of %d tensors from %s", len(same), len(own), cfg.init_checkpoint)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    soft = train_cache.soft is not None
    if soft and train_cache.soft.shape[1] != net_cfg.out_channels - 1:
        raise ValueError(
            f"soft targets have {train_cache.soft.shape[1]} classes, the {cfg.view} view "
            f"{net_cfg.out_channels - 1}"
        )
    loss_fn = (
        SoftTargetLoss(cfg.area_weight) if soft else DiceCELoss(to_onehot_y=True, softmax=True)
    )
    history: list[dict] = []
    start_epoch, best, spent = 0, -1.0, 0.0
    last = out_dir / "last.pt"
    if resume and last.is_file():
        blob = read_checkpoint(last)
        model.load_state_dict(blob["state_dict"])
        opt.load_state_dict(blob["optimizer"])
        start_epoch, best, history = blob["epoch"] + 1, blob["best_dice"], blob["history"]
        spent = float(blob.get("minutes", 0.0))
        log.info("resuming from %s at epoch %d (best mean Dice %.4f)", last, start_epoch, best)

    items = _items(train_cache, net_cfg.context, net_cfg.reference)
    loader = DataLoader(
        Dataset(
            items,
            transform=train_transforms(
                cfg.augment,
                cfg.patch,
                view_spec(cfg.view).symmetric,
                soft,
                net_cfg.context,
                net_cfg.reference,
                view_spec(cfg.view).canonical,
            ),
        ),
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(items) > cfg.batch_size,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init,
    )
    t0 = time.perf_counter()
    log.info(
        "training on %d slices (%d subjects%s), validating on %d slices (%d volumes), device %s",
        len(items),
        len(np.unique(train_cache.subject)),
        ", soft targets" if soft else "",
        len(val_cache),
        len(np.unique(val_cache.volume)),
        device,
    )
    # soft_targets tells inference that the probabilities estimate partial volume (Segmenter)
    extra = {"train_config": asdict(cfg), "metadata": metadata or {}, "soft_targets": soft}
    for epoch in range(start_epoch, cfg.epochs):
        minutes = spent + (time.perf_counter() - t0) / 60
        if cfg.max_minutes and minutes > cfg.max_minutes:
            log.info("time budget of %.1f min spent before epoch %d", cfg.max_minutes, epoch)
            break
        lr = cosine_lr(cfg, epoch, minutes)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        losses = []
        for batch in loader:
            x = batch["image"].to(device, non_blocking=True).float()
            y = batch["label"].to(device, non_blocking=True)
            y = y.float() if soft else y.long()
            opt.zero_grad(set_to_none=True)
            with _autocast(device):
                loss = loss_fn(model(x).float(), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        dice = (
            validate(
                model,
                val_cache,
                device,
                view=cfg.view,
                context=net_cfg.context,
                reference=net_cfg.reference,
            )
            if len(val_cache)
            else {}
        )
        mean = float(np.mean(list(dice.values()))) if dice else -float(np.mean(losses))
        record = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            **{f"val_dice_{k}": v for k, v in dice.items()},
            "lr": lr,
            "minutes": spent + (time.perf_counter() - t0) / 60,
        }
        history.append(record)
        if mean > best:
            best = mean
            save_checkpoint(
                out_dir / "best.pt",
                model,
                net_cfg,
                pre_cfg,
                epoch=epoch,
                best_dice=best,
                val_dice=dice,
                history=history,
                **extra,
            )
        save_checkpoint(
            last,
            model,
            net_cfg,
            pre_cfg,
            epoch=epoch,
            best_dice=best,
            history=history,
            optimizer=opt.state_dict(),
            minutes=record["minutes"],
            **extra,
        )
        log.info(
            "epoch %d loss %.4f val Dice %s",
            epoch,
            record["loss"],
            {k: round(v, 4) for k, v in dice.items()},
        )
        (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    return {"best_mean_dice": best, "history": history, "best": str(out_dir / "best.pt")}


@dataclass
class TrainingData:
    """Where training data comes from; any combination may be given."""

    acdc_root: str | None = None
    acdc_train: str = "1-12,21-32,41-52,61-72,81-92"
    acdc_val: str = "13-16,33-36,53-56,73-76,93-96"
    # weights of the ACDC training slices (times each counts in an epoch): all acdc_repeat, the
    # end-systolic ones acdc_es_repeat more (the small ventricles and the basal RV at ES are the
    # weak point), and the ES ones from the base through the expert's first RV slice that count
    # times 1 + acdc_basal_es_repeat (where model and experts disagree on where the RV ends)
    acdc_repeat: int = 1
    acdc_es_repeat: int = 0
    acdc_basal_es_repeat: int = 0
    # ACDC's training patients cached twice: on the pixel_mm grid and on the working grid that
    # inference uses (finest_pixel_mm); both copies count as above
    acdc_both_scales: bool = False
    nifti_manifest: str | None = None
    synthetic_cohort: str | None = None
    synthetic_frames: int = 6
    view: str = "sa"  # the view read from the synthetic cohort
    # aortic cines rendered on the fly with partial-volume (soft) targets: subjects, seed
    synthetic_aorta: int = 0
    synthetic_aorta_seed: int = 103
    # real whole-heart anatomies resliced along the view's plane with random intensities
    # (synth.wholeheart): label NIfTIs or folders of blood-pool surfaces, slices from each, seed
    wholeheart: list[str] = field(default_factory=list)
    wholeheart_slices: int = 1000
    wholeheart_seed: int = 0
    caches: list[str] = field(default_factory=list)  # prebuilt .npz caches (training side)
    val_caches: list[str] = field(default_factory=list)


def build_caches(
    data: TrainingData,
    work_dir: str | os.PathLike,
    pre_cfg: PreprocessConfig | None = None,
    working_cfg: PreprocessConfig | None = None,
) -> tuple[list[Path], list[Path]]:
    """Preprocess each source into ``work_dir``/*.npz (reused when present); (train, val) caches.
    ACDC's validation patients form the validation set; other sources are split by subject.
    With ``data.acdc_both_scales`` ACDC's training patients are cached a second time with
    ``working_cfg`` (a config with a ``finest_pixel_mm``)."""
    from cardiopheno.segment.data import (
        acdc_patient_ids,
        acdc_volumes,
        aorta_volumes,
        build_slice_cache,
        nifti_pair_volumes,
        synthetic_volumes,
        wholeheart_volumes,
    )

    work_dir = Path(work_dir)
    pre_cfg = pre_cfg or PreprocessConfig()
    train_paths = [Path(p) for p in data.caches]
    val_paths = [Path(p) for p in data.val_caches]

    def cached(name, volumes, cfg=pre_cfg):
        path = work_dir / f"{name}.npz"
        if not path.is_file():
            build_slice_cache(volumes(), path, cfg)
        return path

    if data.acdc_both_scales and (working_cfg is None or working_cfg.finest_pixel_mm is None):
        raise ValueError(
            "acdc_both_scales: the working grid is undefined; give a preprocess config with "
            "finest_pixel_mm set (the short-axis view's has one)"
        )
    if data.acdc_root:
        root = data.acdc_root
        train_ids = acdc_patient_ids(data.acdc_train)
        train_paths.append(cached("acdc_train", lambda: acdc_volumes(root, train_ids)))
        if data.acdc_both_scales:
            train_paths.append(
                cached(
                    "acdc_train_working_grid", lambda: acdc_volumes(root, train_ids), working_cfg
                )
            )
        if data.acdc_val:
            val_paths.append(
                cached("acdc_val", lambda: acdc_volumes(root, acdc_patient_ids(data.acdc_val)))
            )
    if data.nifti_manifest:
        train_paths.append(cached("nifti", lambda: nifti_pair_volumes(data.nifti_manifest)))
    if data.synthetic_cohort:
        name = "synthetic" if data.view == "sa" else f"synthetic_{data.view}"
        train_paths.append(
            cached(
                name,
                lambda: synthetic_volumes(
                    data.synthetic_cohort, data.synthetic_frames, view=data.view
                ),
            )
        )
    if data.synthetic_aorta:
        n, seed = data.synthetic_aorta, data.synthetic_aorta_seed
        train_paths.append(
            cached(
                f"synthetic_aorta_{n}_{seed}",
                lambda: aorta_volumes(n, seed, data.synthetic_frames),
            )
        )
    for i, anatomy in enumerate(data.wholeheart):
        n, seed = data.wholeheart_slices, data.wholeheart_seed + i
        train_paths.append(
            cached(
                f"wholeheart{i}_{data.view}_{n}_{seed}",
                functools.partial(wholeheart_volumes, anatomy, data.view, n, seed),
            )
        )
    if not train_paths:
        raise ValueError(
            "no training data: give acdc_root, nifti_manifest, synthetic_cohort, "
            "synthetic_aorta, wholeheart or caches"
        )
    return train_paths, val_paths


def acdc_repeats(cache: SliceCache, data: TrainingData) -> np.ndarray:
    """How many times each slice of ``cache`` counts in an epoch under ``data``'s ACDC weights
    (``TrainingData.acdc_repeat`` and after); other sources' slices keep their count."""
    counts = np.ones(len(cache), dtype=np.int64) if cache.repeats is None else cache.repeats
    train_ids = acdc_patient_ids(data.acdc_train)
    es_volumes = acdc_es_volumes(data.acdc_root, train_ids)
    acdc = (cache.source == "acdc") & np.isin(cache.subject, train_ids)
    es = acdc & np.isin(cache.volume, es_volumes)
    basal = es & basal_slices(cache, es_volumes, RV_CAVITY)
    weight = np.where(acdc, max(1, data.acdc_repeat), 1) + np.where(es, data.acdc_es_repeat, 0)
    weight = weight * np.where(basal, 1 + data.acdc_basal_es_repeat, 1)
    log.info("ACDC training slices: %d, of which ES %d, basal ES %d; counted %s times",
             acdc.sum(), es.sum(), basal.sum(), sorted(set(weight[acdc])))  # fmt: skip
    return counts * weight


def train_from_sources(
    data: TrainingData,
    out_dir: str | os.PathLike,
    cfg: TrainConfig,
    pre_cfg: PreprocessConfig | None = None,
    resume: bool = True,
) -> dict:
    """Build (or reuse) the slice caches under ``out_dir/cache`` and train into ``out_dir``.

    The caches are on the ``pixel_mm`` grid even when ``pre_cfg`` has a ``finest_pixel_mm``,
    which the checkpoint keeps for inference only: version 3's recipe. Caching ACDC on the
    finer grid as well raised the LV mass bias (+3.7 -> +7.6 g in a matched 30-minute
    fine-tune, BENCHMARKS.md "The working pixel size"); ``data.acdc_both_scales`` adds ACDC's
    training patients on the finer grid to those on the coarse one."""
    out_dir = Path(out_dir)
    if cfg.init_checkpoint:  # refused before hours of caching, not after (read again by train)
        read_checkpoint(cfg.init_checkpoint)
    pre_cfg = pre_cfg or PreprocessConfig()
    cache_cfg = replace(pre_cfg, finest_pixel_mm=None)
    train_paths, val_paths = build_caches(data, out_dir / "cache", cache_cfg, pre_cfg)
    train_cache = SliceCache.load(train_paths)
    if data.acdc_root:
        train_cache.repeats = acdc_repeats(train_cache, data)
    val_cache = SliceCache.load(val_paths) if val_paths else None
    epoch = len(train_cache) if train_cache.repeats is None else int(train_cache.repeats.sum())
    meta = {"sources": asdict(data), "train_slices": epoch}  # slices an epoch, as before
    return train(train_cache, out_dir, cfg, val_cache, pre_cfg, resume=resume, metadata=meta)


def train_from_settings(
    settings: dict, checkpoint: str | os.PathLike, threads: int | None = None
) -> dict:
    """Train from the ``segmentation.train`` config section and copy the best checkpoint to
    ``checkpoint`` (the Snakemake rule's output)."""
    import shutil

    if threads:
        torch.set_num_threads(int(threads))
    data = TrainingData(
        acdc_root=settings.get("acdc") or None,
        acdc_train=settings.get("acdc_train", TrainingData.acdc_train),
        acdc_val=settings.get("acdc_val", TrainingData.acdc_val),
        nifti_manifest=settings.get("nifti_manifest") or None,
        synthetic_cohort=settings.get("synthetic_cohort") or None,
        # the schema's default (4) fills this in the workflow; the command's is the dataclass's
        synthetic_frames=int(settings.get("synthetic_frames", TrainingData.synthetic_frames)),
    )
    cfg = TrainConfig(
        epochs=int(settings.get("epochs", TrainConfig.epochs)),
        batch_size=int(settings.get("batch_size", TrainConfig.batch_size)),
        learning_rate=float(settings.get("learning_rate", TrainConfig.learning_rate)),
        val_fraction=float(settings.get("val_fraction", TrainConfig.val_fraction)),
        num_workers=int(settings.get("workers", TrainConfig.num_workers)),
        seed=int(settings.get("seed", TrainConfig.seed)),
        max_minutes=settings.get("max_minutes") or None,
        device=settings.get("device", TrainConfig.device),
        augment=settings.get("augment", TrainConfig.augment),
    )
    out_dir = Path(checkpoint).parent / "training"
    result = train_from_sources(data, out_dir, cfg, PreprocessConfig(**view_spec("sa").preprocess))
    shutil.copyfile(result["best"], checkpoint)
    return result
