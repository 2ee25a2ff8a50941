"""Fixtures for the training tests: a method context on a tiny U-Net, phantom folders (HC18 and
images/ + masks/ layouts) and tiny `hc-studio train` runs."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hc_studio.core.phantom import make_phantom
from hc_studio.core.training.method_api import TrainContext
from hc_studio.models.unet import UNet

# One torch thread: on small machines (and some virtual ones) several threads make the tiny
# networks of these tests many times slower, not faster.
torch.set_num_threads(1)

CONTEXT_SIZE = (32, 48)


@pytest.fixture
def method_context() -> Callable[..., TrainContext]:
    """`make(needs_teacher, total=100, warmup=10, rampup=20, teacher=None)`: a CPU context on a
    width-4 U-Net (seeded) for 32x48 frames; the teacher is a frozen copy unless given."""

    def make(
        needs_teacher: bool,
        total: int = 100,
        warmup: int = 10,
        rampup: int = 20,
        teacher: torch.nn.Module | None = None,
    ) -> TrainContext:
        torch.manual_seed(0)
        student = UNet(width=4)
        if needs_teacher and teacher is None:
            teacher = copy.deepcopy(student).requires_grad_(False)
        return TrainContext(
            student=student,
            teacher=teacher if needs_teacher else None,
            device=torch.device("cpu"),
            total_iterations=total,
            warmup_iterations=warmup,
            rampup_iterations=rampup,
            image_size=CONTEXT_SIZE,
            consistency=0.1,
        )

    return make


FRAME_SHAPE = (108, 160)
PIXEL_MM = 0.5
# Arguments of a run that takes well under a second per step on one CPU core.
TINY_RUN = [
    "--image-size", "32", "48", "--width", "4", "--batch-size", "2", "--device", "cpu",
    "--threads", "1",
]  # fmt: skip


def write_hc18_folder(folder: Path, n_patients: int, seed: int = 0, labelled: bool = True) -> Path:
    """`n_patients` phantom frames NNN_HC.png (+ NNN_HC_Annotation.png outlines when
    `labelled`) and an HC18-style pixel-size CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["filename,pixel size(mm)"]
    for index in range(n_patients):
        phantom = make_phantom(FRAME_SHAPE, seed=seed + index)
        name = f"{index + 1:03d}_HC"
        cv2.imwrite(str(folder / f"{name}.png"), np.rint(phantom.image * 255).astype(np.uint8))
        if labelled:
            outline = phantom.outline.astype(np.uint8) * 255
            cv2.imwrite(str(folder / f"{name}_Annotation.png"), outline)
        rows.append(f"{name}.png,{PIXEL_MM}")
    (folder / "pixel_size.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="session")
def phantom_labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten labelled phantom frames, one patient each (HC18 layout)."""
    return write_hc18_folder(tmp_path_factory.mktemp("labelled"), 10)


@pytest.fixture(scope="session")
def phantom_labelled_many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty labelled phantom frames, one patient each (HC18 layout): enough for a verdict."""
    return write_hc18_folder(tmp_path_factory.mktemp("labelled_many"), 40, seed=200)


@pytest.fixture(scope="session")
def phantom_validation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three labelled phantom frames of other heads (HC18 layout)."""
    return write_hc18_folder(tmp_path_factory.mktemp("validation"), 3, seed=50)


@pytest.fixture(scope="session")
def phantom_unlabelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six unlabelled phantom frames."""
    return write_hc18_folder(tmp_path_factory.mktemp("unlabelled"), 6, seed=100, labelled=False)


@pytest.fixture
def tiny_run() -> list[str]:
    """Arguments of a run that takes well under a second per step on one CPU core."""
    return list(TINY_RUN)


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for a child `python -m hc_studio.core.cli`: one thread, quiet warnings."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.fixture
def cli_command() -> Callable[..., list[str]]:
    def command(*arguments: str) -> list[str]:
        return [sys.executable, "-m", "hc_studio.core.cli", "train", *arguments]

    return command


@pytest.fixture
def run_tiny_training(
    cli_command, tiny_run, subprocess_env, phantom_labelled, phantom_unlabelled, tmp_path
) -> Callable[..., list[dict]]:
    """`run(method, *extra_args)`: 4 iterations (one of warm-up) of `hc-studio train --method
    METHOD` on the phantom folders in a subprocess; returns the events (stdout JSON lines) after
    checking exit code 0."""

    def run(method: str, *extra: str) -> list[dict]:
        command = cli_command(
            *tiny_run, "--method", method, "--out", str(tmp_path / f"run_{method}"),
            "--labeled", str(phantom_labelled), "--unlabeled", str(phantom_unlabelled),
            "--iterations", "4", "--warmup-iterations", "1", "--no-stdin", *extra,
        )  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, env=subprocess_env, timeout=240
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    return run
