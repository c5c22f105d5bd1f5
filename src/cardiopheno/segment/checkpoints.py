"""Checkpoint files read as data: tensors and plain values, never code.

A ``torch.save`` file is a pickle, and unpickling can call any importable function: a checkpoint
shared by another group could run a shell command when opened. Every checkpoint the project reads
(inference, a training's initial weights, a resumed training) goes through :func:`read_checkpoint`,
which loads with ``torch.load(..., weights_only=True)``: dicts, lists, tuples, strings, numbers,
booleans, None and tensors only. A file that needs anything else is refused with a
:class:`CheckpointError` naming the file and what it asked for; nothing in it is run.
:func:`plain` turns what the training code stores beside the weights (paths, numpy values,
tuples of dataclass fields) into those plain types before saving, so our own files always load.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not plain data; the message names the file and the
    cause."""


_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The dict stored in the checkpoint at ``path``, loaded on the CPU as data only.

    Raises :class:`CheckpointError` when the file is absent, unreadable, not a dict, or holds
    anything beyond tensors and plain values (an object whose unpickling would call code).
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _UNSUPPORTED.search(str(exc))
        if found:
            raise CheckpointError(
                f"{path}: refused: the file holds more than tensors and plain values (it asks "
                f"for {found.group(1)}), and loading it could run code it carries. Re-save it as "
                "a dict of tensors, numbers, strings, lists and dicts (state_dict, network, "
                "preprocess)"
            ) from None
        detail = _UNPICKLER.search(str(exc))
        raise CheckpointError(
            f"{path}: cannot load checkpoint: not a torch.save file of tensors and plain values"
            + (f" ({detail.group(1)})" if detail else "")
        ) from None
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(
            f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(blob, dict):
        raise CheckpointError(
            f"{path}: not a cardiopheno checkpoint (holds a {type(blob).__name__}, expected a "
            "dict with state_dict, network and preprocess)"
        )
    return blob


def plain(value: Any) -> Any:
    """``value`` with every path made a string and every numpy value a Python number or list,
    through dicts, lists and tuples; tensors, strings, numbers, booleans and None unchanged.
    Anything else is refused (``TypeError`` naming its type): it would not load as data."""
    if value is None or isinstance(value, str | bool | int | float | torch.Tensor):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    raise TypeError(
        f"checkpoint metadata of type {type(value).__name__} would not load as plain data"
    )
