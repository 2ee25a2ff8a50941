"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is a dict saved with `torch.save` (atomically), loadable with `weights_only=True`
(only tensors, numbers, strings, lists and dicts inside, so opening one runs no code):

- "format", "version"
- "model": {"config": UNet config dict, "state": student state_dict}
- "teacher": EMA teacher state_dict or None
- "extra_modules": {name: state_dict} of the method's extra networks
- "optimizer": optimizer state_dict
- "method": {"name", "config" (dict), "state" (method.state_dict())}
- "iteration": steps completed
- "rng": list over ranks of {"torch", "numpy", "python", "cuda", "augment"} generator states
- "samplers": {"labelled", "unlabelled"} sampler states (identical on every rank)
- "settings": the run's settings (dict), "best": best validation so far (dict or None),
  "data": a one-line description of the training data (for the ONNX metadata)
"""

from __future__ import annotations

import io
import pickle
import random
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write_bytes

FORMAT = "hc-studio-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable HC Studio checkpoint; str() names it and says why."""


class CheckpointState(dict):
    """A loaded checkpoint: the dict itself, plus `path`, the file it came from (for messages)."""

    def __init__(self, state: Mapping[str, Any], path: Path) -> None:
        super().__init__(state)
        self.path = path


def save_checkpoint(
    path: str | Path, state: Mapping[str, Any], also: Sequence[str | Path] = ()
) -> None:
    """Write `state` to `path`, and the same bytes to every path in `also` (serialised once)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buffer)
    for target in (path, *also):
        atomic_write_bytes(target, buffer.getvalue())


def load_checkpoint(path: str | Path) -> CheckpointState:
    """The checkpoint dict at `path` (tensors on the CPU); raises CheckpointError naming it.

    Always `weights_only=True`: a file holding other Python objects is refused, and torch's own
    message (which suggests turning that protection off) is never passed on.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of files it then reads fine (or refuses).
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch and pickle raise many kinds)
        raise CheckpointError(f"{path.name}: {_load_failure(error)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: not an HC Studio checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path.name}: written by a newer HC Studio (v{state['version']})")
    return CheckpointState(state, path)


def load_network(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(U-Net config, state_dict) of the network in checkpoint `path` (a training checkpoint or
    a `hc-studio pretrain` encoder); raises CheckpointError naming the file when it holds none."""
    state = load_checkpoint(path)
    model = state.get("model")
    if not (
        isinstance(model, dict)
        and isinstance(model.get("config"), dict)
        and isinstance(model.get("state"), dict)
    ):
        raise CheckpointError(
            f"{Path(path).name}: holds no network (an HC Studio checkpoint of another kind?)"
        )
    return dict(model["config"]), model["state"]


def _load_failure(error: Exception) -> str:
    """Why `torch.load(..., weights_only=True)` failed, in our words (never torch's advice)."""
    if isinstance(error, FileNotFoundError):
        return "no such checkpoint"
    if isinstance(error, IsADirectoryError):
        return "a folder, not a checkpoint file"
    if isinstance(error, OSError):
        return f"cannot be read ({error.strerror or type(error).__name__})"
    if isinstance(error, pickle.UnpicklingError) and "Unsupported global" in str(error):
        return (
            "holds Python objects besides tensors and plain values; it is refused because "
            "opening such a file can run code (HC Studio checkpoints never hold any)"
        )
    if isinstance(error, EOFError) or (
        isinstance(error, RuntimeError) and "zip archive" in str(error)
    ):
        return "truncated or damaged (not a complete checkpoint file)"
    return f"not a checkpoint file ({type(error).__name__})"


def load_network_state(
    network: nn.Module, state: Mapping[str, Any], source: str | Path, what: str = "network"
) -> None:
    """`network.load_state_dict(state)`; raises CheckpointError naming `source` when the
    saved weights do not fit the network (another architecture or a damaged entry)."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: holds no {what} weights")
    ours = network.state_dict()
    missing = [key for key in ours if key not in state]
    unexpected = [key for key in state if key not in ours]
    reshaped = [
        key
        for key, value in state.items()
        if key in ours and (not torch.is_tensor(value) or value.shape != ours[key].shape)
    ]
    problems = []
    if reshaped:
        key = reshaped[0]
        theirs = tuple(state[key].shape) if torch.is_tensor(state[key]) else type(state[key])
        problems.append(
            f"{len(reshaped)} of another shape (e.g. {key}: {theirs} in the file, "
            f"{tuple(ours[key].shape)} here)"
        )
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unknown (e.g. {unexpected[0]})")
    if problems:
        raise CheckpointError(
            f"{source}: its {what} does not fit this run's architecture: weights "
            + "; ".join(problems)
        )
    network.load_state_dict(state)


def capture_rng(augment_generator: torch.Generator | None = None) -> dict[str, Any]:
    """This process's random generator states, as checkpoint-safe values."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    python_version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": [python_version, list(python_state), python_gauss],
        "augment": augment_generator.get_state() if augment_generator is not None else None,
    }


def restore_rng(state: Mapping[str, Any], augment_generator: torch.Generator | None = None):
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, python_state, python_gauss = state["python"]
    random.setstate((version, tuple(python_state), python_gauss))
    if augment_generator is not None and state["augment"] is not None:
        augment_generator.set_state(state["augment"])
