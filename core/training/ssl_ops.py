"""Tensor pieces shared by several semi-supervised methods (CAD, M3HL, TransMedSeg, the
teacher-student base).

Shapes follow `method_api`: images, masks and probabilities are `(B, 1, H, W)`; networks return
logits of that shape. Nothing here draws random numbers from anything but torch's global
generator, so the trainer's seeding and checkpointed RNG states cover it.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from .method_api import TrainContext


def post_warmup_progress(ctx: TrainContext, step: int) -> float:
    """Linear progress through the steps after the warm-up: 0 at its first step, 1 at the last."""
    span = max(ctx.total_iterations - ctx.warmup_iterations - 1, 1)
    return min(max((step - ctx.warmup_iterations) / span, 0.0), 1.0)


def hard_labels(logits: Tensor) -> Tensor:
    """Thresholded predictions in {0, 1} (float, no gradient) from logits (B, 1, H, W)."""
    return (logits.detach() > 0).float()


def input_noise(images: Tensor, std: float, clip: float) -> Tensor:
    """Images plus Gaussian noise of `std`, clipped to +-`clip` (the mean-teacher perturbation)."""
    return images + (torch.randn_like(images) * std).clamp(-clip, clip)


def largest_component(masks: Tensor) -> Tensor:
    """The largest 8-connected component of each mask; an empty mask stays empty.

    masks: (B, 1, H, W) bool or {0, 1}; returns (B, 1, H, W) bool on the same device.
    """
    planes = masks.detach().to("cpu", torch.uint8).numpy()
    kept = np.zeros(planes.shape, dtype=bool)
    for index, plane in enumerate(planes[:, 0]):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(plane, connectivity=8)
        if count > 1:  # label 0 is the background
            biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            kept[index, 0] = labels == biggest
    return torch.from_numpy(kept).to(masks.device)
