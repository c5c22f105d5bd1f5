"""Train the segmentation network on cached slices (see :mod:`cardiopheno.segment.data`).

MONAI augmentation (:mod:`cardiopheno.segment.augment`), DiceCE loss, validation Dice per class
(MONAI ``DiceMetric``, per volume) after every epoch, best checkpoint kept, resumable from
``last.pt``. Uses CUDA when present (bf16 autocast) and the CPU otherwise. The sources of the
slices and their caches are :mod:`cardiopheno.segment.training_sources`.

Caches with soft targets (each pixel's share of each structure, the synthetic aorta's partial
volume) train on those instead (:class:`SoftTargetLoss`): the network's probabilities then
estimate the share, and their sum a sub-pixel area.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.losses import DiceCELoss, DiceLoss
from monai.metrics import DiceMetric
from monai.networks.utils import one_hot
from monai.utils import set_determinism

from cardiopheno.segment.augment import augment_mode, train_transforms
from cardiopheno.segment.checkpoints import read_checkpoint
from cardiopheno.segment.data import SliceCache
from cardiopheno.segment.network import (
    NetworkConfig,
    build_network,
    inflate_input_channels,
    resolve_device,
    save_checkpoint,
)
from cardiopheno.segment.training_sources import TrainingData, acdc_repeats, build_caches
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


def network_inputs(cache: SliceCache, idx: np.ndarray, context: int, reference: bool) -> np.ndarray:
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


def training_items(cache: SliceCache, context: int = 0, reference: bool = False) -> list[dict]:
    """Training dicts; with soft targets the label is background + the cached shares; the image
    is the network input of :func:`network_inputs`. A slice with a repeat count appears that
    many times."""
    if cache.soft is None:
        labels = [cache.label[i][None] for i in range(len(cache))]
    else:
        labels = []
        for i in range(len(cache)):
            fg = cache.soft[i].astype(np.float32) / 255.0
            total = fg.sum(axis=0, keepdims=True)
            fg = fg / np.maximum(total, 1.0)  # overlapping shares (rounding) never exceed 1
            labels.append(np.concatenate([1.0 - fg.sum(axis=0, keepdims=True), fg]))
    images = network_inputs(cache, np.arange(len(cache)), context, reference)
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
        x = torch.from_numpy(network_inputs(cache, idx, context, reference))
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


@dataclass
class _Run:
    """One training run's parts and its progress (what ``last.pt`` keeps between sessions)."""

    model: torch.nn.Module
    net_cfg: NetworkConfig
    opt: torch.optim.Optimizer
    loss_fn: torch.nn.Module
    device: torch.device
    soft: bool
    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best: float = -1.0
    spent: float = 0.0  # minutes of earlier sessions


def _start_run(cfg: TrainConfig, train_cache: SliceCache, init_blob: dict | None) -> _Run:
    """Seed everything, then build the network (from ``init_blob``'s weights when given), its
    optimiser and the loss (soft targets when the cache has them) on the configured device."""
    set_determinism(seed=cfg.seed)
    device = resolve_device(cfg.device)
    net_cfg = NetworkConfig.from_dict(
        {**cfg.network, "out_channels": view_spec(cfg.view).n_classes}
    )
    model = build_network(net_cfg)
    if init_blob is not None:
        _load_initial_weights(model, init_blob, cfg.init_checkpoint)
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
    return _Run(model, net_cfg, opt, loss_fn, device, soft)


def _load_initial_weights(model: torch.nn.Module, init_blob: dict, source) -> None:
    """Weights of the same shape only: another view's model (another number of classes) lends
    everything but its last layer; a 2D model's input convolutions are widened for 2.5D input
    (the neighbours' weights 0)."""
    own = model.state_dict()
    init = inflate_input_channels(init_blob["state_dict"], own)
    same = {k: v for k, v in init.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(same, strict=False)
    log.info("initialised %d of %d tensors from %s", len(same), len(own), source)


def _resume(run: _Run, last: Path) -> None:
    """Continue ``run`` from the weights, optimiser state and progress saved in ``last``."""
    blob = read_checkpoint(last)
    run.model.load_state_dict(blob["state_dict"])
    run.opt.load_state_dict(blob["optimizer"])
    run.start_epoch, run.best, run.history = blob["epoch"] + 1, blob["best_dice"], blob["history"]
    run.spent = float(blob.get("minutes", 0.0))
    log.info("resuming from %s at epoch %d (best mean Dice %.4f)", last, run.start_epoch, run.best)


def _loader(train_cache: SliceCache, cfg: TrainConfig, run: _Run) -> DataLoader:
    """Shuffled, augmented batches of the training slices (each repeated as often as it counts)."""
    spec = view_spec(cfg.view)
    net_cfg = run.net_cfg
    items = training_items(train_cache, net_cfg.context, net_cfg.reference)
    transform = train_transforms(
        cfg.augment, cfg.patch, spec.symmetric, run.soft, net_cfg.context, net_cfg.reference,
        spec.canonical,
    )  # fmt: skip
    return DataLoader(
        Dataset(items, transform=transform),
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(items) > cfg.batch_size,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        pin_memory=run.device.type == "cuda",
        worker_init_fn=_worker_init,
    )


def _train_epoch(run: _Run, loader: DataLoader) -> list[float]:
    """One pass over ``loader``: the loss of each batch."""
    run.model.train()
    losses = []
    for batch in loader:
        x = batch["image"].to(run.device, non_blocking=True).float()
        y = batch["label"].to(run.device, non_blocking=True)
        y = y.float() if run.soft else y.long()
        run.opt.zero_grad(set_to_none=True)
        with _autocast(run.device):
            loss = run.loss_fn(run.model(x).float(), y)
        loss.backward()
        run.opt.step()
        losses.append(float(loss.detach()))
    return losses


def _save_epoch(
    run: _Run, out_dir: Path, pre_cfg: PreprocessConfig, dice: dict, mean: float, extra: dict
) -> None:
    """``best.pt`` when ``mean`` (validation Dice) is a new best, and ``last.pt`` always."""
    epoch, record = run.history[-1]["epoch"], run.history[-1]
    if mean > run.best:
        run.best = mean
        save_checkpoint(
            out_dir / "best.pt", run.model, run.net_cfg, pre_cfg, epoch=epoch,
            best_dice=run.best, val_dice=dice, history=run.history, **extra,
        )  # fmt: skip
    save_checkpoint(
        out_dir / "last.pt", run.model, run.net_cfg, pre_cfg, epoch=epoch, best_dice=run.best,
        history=run.history, optimizer=run.opt.state_dict(), minutes=record["minutes"], **extra,
    )  # fmt: skip


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
    run = _start_run(cfg, train_cache, init_blob)
    if resume and (out_dir / "last.pt").is_file():
        _resume(run, out_dir / "last.pt")
    loader = _loader(train_cache, cfg, run)
    t0 = time.perf_counter()
    log.info(
        "training on %d slices (%d subjects%s), validating on %d slices (%d volumes), device %s",
        len(loader.dataset), len(np.unique(train_cache.subject)),
        ", soft targets" if run.soft else "", len(val_cache), len(np.unique(val_cache.volume)),
        run.device,
    )  # fmt: skip
    # soft_targets tells inference that the probabilities estimate partial volume (Segmenter)
    extra = {"train_config": asdict(cfg), "metadata": metadata or {}, "soft_targets": run.soft}
    for epoch in range(run.start_epoch, cfg.epochs):
        minutes = run.spent + (time.perf_counter() - t0) / 60
        if cfg.max_minutes and minutes > cfg.max_minutes:
            log.info("time budget of %.1f min spent before epoch %d", cfg.max_minutes, epoch)
            break
        lr = cosine_lr(cfg, epoch, minutes)
        for group in run.opt.param_groups:
            group["lr"] = lr
        losses = _train_epoch(run, loader)
        net_cfg = run.net_cfg
        dice = (
            validate(run.model, val_cache, run.device, view=cfg.view, context=net_cfg.context,
                     reference=net_cfg.reference)
            if len(val_cache)
            else {}
        )  # fmt: skip
        mean = float(np.mean(list(dice.values()))) if dice else -float(np.mean(losses))
        run.history.append(
            {
                "epoch": epoch,
                "loss": float(np.mean(losses)),
                **{f"val_dice_{k}": v for k, v in dice.items()},
                "lr": lr,
                "minutes": run.spent + (time.perf_counter() - t0) / 60,
            }
        )
        _save_epoch(run, out_dir, pre_cfg, dice, mean, extra)
        log.info("epoch %d loss %.4f val Dice %s", epoch, run.history[-1]["loss"],
                 {k: round(v, 4) for k, v in dice.items()})  # fmt: skip
        (out_dir / "history.json").write_text(json.dumps(run.history, indent=1))
    return {"best_mean_dice": run.best, "history": run.history, "best": str(out_dir / "best.pt")}


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
