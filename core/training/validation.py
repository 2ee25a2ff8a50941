"""Held-out validation: Dice and HD95 at the training size, HC error on the original frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..biometry import biometry_from_ellipse
from ..ellipse import ellipse_from_probability
from ..metrics import dice, hd95_mm
from ..spacing import Spacing
from .data import FrameInfo, FrameSet, as_float

BATCH = 16


@dataclass(frozen=True)
class ValidationScores:
    """Means over the validation frames.

    dice: of (probability > 0.5) vs the target at the training size (all frames).
    hd95_mm: over calibrated frames with a finite distance (None if none).
    hc_mae_mm: mean |HC(predicted ellipse) - HC(reference ellipse)| in mm over calibrated
        frames where an ellipse could be fitted; `no_ellipse` counts the frames where none could.
    """

    dice: float
    hd95_mm: float | None
    hc_mae_mm: float | None
    frames: int
    no_ellipse: int


@torch.no_grad()
def predict_probabilities(network: nn.Module, images: torch.Tensor, device: torch.device):
    """(N, h, w) float32 numpy probabilities for uint8 images (N, 1, h, w), in eval mode."""
    was_training = network.training
    network.eval()
    try:
        chunks = [
            torch.sigmoid(network(as_float(images[i : i + BATCH], device)))[:, 0].float().cpu()
            for i in range(0, len(images), BATCH)
        ]
    finally:
        network.train(was_training)
    return torch.cat(chunks).numpy()


def spacing_at_size(info: FrameInfo, size: tuple[int, int]) -> Spacing:
    """The frame's pixel size after resizing the frame to `size` (h, w)."""
    frame_h, frame_w = info.frame_shape
    return Spacing(
        info.spacing.row_mm * frame_h / size[0],
        info.spacing.col_mm * frame_w / size[1],
        info.spacing.source,
    )


def _hc_error_mm(probability: np.ndarray, info: FrameInfo) -> float | None:
    """|HC error| in mm, or None when no ellipse is found; NaN for a frame that cannot say
    (uncalibrated, or no reference ellipse)."""
    fit = ellipse_from_probability(probability, info.frame_shape, 0.5, info.spacing)
    if fit is None:
        return None
    if not info.spacing.calibrated or info.ellipse_px is None:
        return math.nan
    predicted = biometry_from_ellipse(fit.ellipse_px, info.spacing).hc
    return abs(predicted - biometry_from_ellipse(info.ellipse_px, info.spacing).hc)


def validate(network: nn.Module, frames: FrameSet, device: torch.device) -> ValidationScores:
    size = tuple(frames.images.shape[-2:])
    probabilities = predict_probabilities(network, frames.images, device)
    dices, distances, hc_errors, no_ellipse = [], [], [], 0
    for probability, mask, info in zip(probabilities, frames.masks, frames.infos, strict=True):
        predicted, target = probability > 0.5, mask[0].numpy().astype(bool)
        dices.append(dice(predicted, target))
        if info.spacing.calibrated:
            distances.append(hd95_mm(predicted, target, spacing_at_size(info, size)))
        error = _hc_error_mm(probability, info)
        if error is None:
            no_ellipse += 1
        elif math.isfinite(error):
            hc_errors.append(error)
    finite = [d for d in distances if math.isfinite(d)]
    return ValidationScores(
        dice=float(np.mean(dices)),
        hd95_mm=float(np.mean(finite)) if finite else None,
        hc_mae_mm=float(np.mean(hc_errors)) if hc_errors else None,
        frames=len(dices),
        no_ellipse=no_ellipse,
    )
