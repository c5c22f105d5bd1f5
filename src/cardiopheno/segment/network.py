"""The segmentation network (a lean MONAI 2D UNet) and its checkpoint format.

A checkpoint is a ``torch.save`` dict holding the weights, the network and preprocessing settings
(so inference always matches training), and training metadata. Training checkpoints also hold the
optimiser state for resuming; the shipped model does not.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from monai.networks.blocks import Convolution
from monai.networks.nets import UNet
from torch.nn.utils.fusion import fuse_conv_bn_eval

from cardiopheno.segment.checkpoints import CheckpointError, plain, read_checkpoint
from cardiopheno.segment.transforms import N_CLASSES, PreprocessConfig
from cardiopheno.views import VIEWS

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = VIEWS["sa"].default_checkpoint  # the shipped short-axis model


@dataclass(frozen=True)
class NetworkConfig:
    """MONAI ``UNet`` settings. The default (16..256 channels, one residual unit per level, batch
    norm, 0.84 M parameters) costs about a third of the standard two-residual-unit UNet per
    pixel; batch norm folds into a fixed affine at inference, where instance norm would not."""

    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 1
    norm: str = "batch"
    dropout: float = 0.0
    out_channels: int = N_CLASSES  # background plus the view's labels (4 for the short axis)
    # 2.5D input: the network sees each slice with this many neighbouring slices of the same
    # frame on either side as extra input channels (0: the slice alone)
    context: int = 0
    # one more input channel: the same slice at the cine's first frame (end-diastole on ECG-
    # triggered cines). Without it a frame's phase is invisible, and at the base the experts'
    # RV ends at a phase-dependent slice (the base descends toward the apex in systole)
    reference: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return 1 + 2 * self.context + int(self.reference)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"], d["strides"] = list(self.channels), list(self.strides)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NetworkConfig:
        d = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for key in ("channels", "strides"):
            if key in d:
                d[key] = tuple(int(v) for v in d[key])
        return cls(**d)


def build_network(cfg: NetworkConfig | None = None) -> UNet:
    cfg = cfg or NetworkConfig()
    return UNet(
        spatial_dims=2,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        channels=cfg.channels,
        strides=cfg.strides,
        num_res_units=cfg.num_res_units,
        norm=cfg.norm,
        dropout=cfg.dropout,
    )


def inflate_input_channels(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Weights of a network with fewer input channels made to fit one with more (``own``: its
    state dict): a 2D network's kernel goes to the centre channel of a 2.5D one's slice
    channels, a network's channels to the first ones of the same network with a ``reference``
    channel, and every new channel's weights are 0. The wider network so starts out computing
    exactly what the narrower one did, and fine-tuning learns what the new channels add. Other
    tensors are returned unchanged."""
    out = dict(state)
    for key, old in state.items():
        new = own.get(key)
        if new is None or not (old.ndim == new.ndim == 4) or old.shape[1] >= new.shape[1]:
            continue
        if old.shape[0] != new.shape[0] or old.shape[2:] != new.shape[2:]:
            continue
        # the old channels sit centred in the slice channels (odd in number), which come first
        slices = new.shape[1] - (new.shape[1] + 1) % 2
        if old.shape[1] % 2 == 0 or old.shape[1] > slices:
            continue
        first = (slices - old.shape[1]) // 2
        inflated = torch.zeros_like(new)
        inflated[:, first : first + old.shape[1]] = old
        out[key] = inflated
    return out


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    net_cfg: NetworkConfig,
    pre_cfg: PreprocessConfig,
    **extra,
) -> None:
    """Write a checkpoint atomically (a crash mid-write never leaves a truncated file), as plain
    data only (:func:`~cardiopheno.segment.checkpoints.plain`), so it loads without running code."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {"state_dict": state, "network": net_cfg.to_dict(), "preprocess": pre_cfg.to_dict()}
    blob.update(plain(extra))
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, NetworkConfig, PreprocessConfig, dict]:
    """Load a checkpoint (default: the shipped model) as an eval-mode network on ``device``.

    The file is read as data only (:func:`~cardiopheno.segment.checkpoints.read_checkpoint`): one
    that would run code when unpickled is refused with a :class:`CheckpointError`."""
    path = Path(path) if path else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"{path}: segmentation checkpoint not found")
    blob = read_checkpoint(path)
    try:
        net_cfg = NetworkConfig.from_dict(blob["network"])
        pre_cfg = PreprocessConfig.from_dict(blob["preprocess"])
        model = build_network(net_cfg)
        model.load_state_dict(blob["state_dict"])
    except Exception as exc:  # torch/pickle raise many types for a corrupt or foreign file
        raise CheckpointError(
            f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    model.to(device).eval()
    return model, net_cfg, pre_cfg, blob


def fold_batch_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold each eval-mode batch norm into the convolution before it, in place, for inference.

    MONAI's ``Convolution`` block is conv -> ADN (norm, dropout, activation in that order); at
    inference the norm is a fixed per-channel affine map, which PyTorch's ``fuse_conv_bn_eval``
    moves into the convolution's weights and bias. The output is unchanged up to float rounding
    and one memory pass per layer is saved. Blocks whose ADN does not start with a batch norm are
    left as they are. Do not train the folded network.
    """
    for block in model.modules():
        if not isinstance(block, Convolution) or not hasattr(block, "adn"):
            continue
        first = next(iter(block.adn.named_children()), (None, None))
        if first[0] != "N" or not isinstance(first[1], torch.nn.modules.batchnorm._BatchNorm):
            continue
        block.conv = fuse_conv_bn_eval(
            block.conv, first[1], transpose=isinstance(block.conv, torch.nn.ConvTranspose2d)
        )
        block.adn.N = torch.nn.Identity()
    return model


PRECISIONS = ("auto", "float32", "bfloat16", "float16")


def resolve_precision(precision: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for inference on ``device``, or None for plain float32.

    ``auto``: float16 on a CUDA GPU, float32 on a CPU, so that CPU results do not depend on the
    node's processor. ``bfloat16`` on a CPU whose instruction set has AMX-BF16 (Intel Xeon from
    Sapphire Rapids on) runs the network about 2x and the whole segmentation about 1.4x as fast,
    with labels that differ little from float32's (BENCHMARKS.md); elsewhere bfloat16 is
    emulated and slower than float32, which is logged as a warning.
    """
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if precision == "float32":
        return None
    amx = {"bfloat16": "amx_bf16", "float16": "amx_fp16"}[precision]
    if device.type == "cpu" and not torch.cpu.get_capabilities().get(amx):
        log.warning("%s on a CPU without %s is emulated and slower than float32", precision, amx)
    return getattr(torch, precision)


def resolve_device(device: str | None) -> torch.device:
    """``cuda`` when asked for or (with ``auto``/None) when present; a clear error when asked for
    a GPU that is not there."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but torch sees no CUDA GPU")
    return torch.device(device)
