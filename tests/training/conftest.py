"""Fixtures for the training tests: a method context on a tiny U-Net, phantom folders and a
tiny `hc-studio train` run in a subprocess."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hc_studio.core.phantom import make_phantom_batch
from hc_studio.core.training.method_api import TrainContext
from hc_studio.models.unet import UNet

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


@pytest.fixture(scope="session")
def phantom_train_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(labelled folder with images/ and masks/, unlabelled folder) of small phantoms."""
    root = tmp_path_factory.mktemp("phantom_train")
    labelled, unlabelled = root / "labelled", root / "unlabelled"
    for sub in ("images", "masks"):
        (labelled / sub).mkdir(parents=True)
    unlabelled.mkdir()
    for i, phantom in enumerate(make_phantom_batch(6, shape=(64, 96), seed=3)):
        cv2.imwrite(str(labelled / "images" / f"p{i}.png"), (phantom.image * 255).astype(np.uint8))
        cv2.imwrite(
            str(labelled / "masks" / f"p{i}.png"), (phantom.mask > 0).astype(np.uint8) * 255
        )
    for i, phantom in enumerate(make_phantom_batch(4, shape=(64, 96), seed=4)):
        cv2.imwrite(str(unlabelled / f"u{i}.png"), (phantom.image * 255).astype(np.uint8))
    return labelled, unlabelled


@pytest.fixture
def run_tiny_training(phantom_train_folders, tmp_path) -> Callable[..., list[dict]]:
    """`run(method, *extra_args)`: 4 iterations of `hc-studio train` (batch 2, 32x48, CPU) on
    the phantom folders; returns the events (stdout JSON lines) after checking exit code 0."""
    labelled, unlabelled = phantom_train_folders

    def run(method: str, *extra: str) -> list[dict]:
        command = [
            sys.executable,
            "-m",
            "hc_studio.core.cli",
            "train",
            "--method",
            method,
            "--labelled",
            str(labelled),
            "--unlabelled",
            str(unlabelled),
            "--out",
            str(tmp_path / f"run_{method}"),
            "--iterations",
            "4",
            "--warmup-iterations",
            "1",
            "--batch-size",
            "2",
            "--image-size",
            "32",
            "48",
            "--width",
            "4",
            "--device",
            "cpu",
            "--no-stdin",
            *extra,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-2000:]
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    return run
