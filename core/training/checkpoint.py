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
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_bytes

FORMAT = "hc-studio-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable HC Studio checkpoint; str() names it."""


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at `path` (tensors on the CPU); raises CheckpointError."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path.name}: no such checkpoint") from None
    except Exception as error:  # noqa: BLE001 (pickle raises many kinds)
        raise CheckpointError(f"{path.name}: not a readable checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: not an HC Studio checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path.name}: written by a newer HC Studio (v{state['version']})")
    return state


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
