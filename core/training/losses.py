"""Losses shared by the methods. Inputs are logits / probabilities `(B, 1, H, W)`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_dice_loss(probabilities: Tensor, targets: Tensor, eps: float = 1e-5) -> Tensor:
    """1 - soft Dice over each sample's pixels, averaged over the batch.

    probabilities, targets: (B, 1, H, W) in [0, 1] (targets may be soft).
    """
    return soft_dice_per_sample(probabilities, targets, eps).mean()


def soft_dice_per_sample(probabilities: Tensor, targets: Tensor, eps: float = 1e-5) -> Tensor:
    """(B,) 1 - soft Dice of each sample over its own pixels (`soft_dice_loss` before the mean)."""
    dims = tuple(range(1, probabilities.dim()))
    intersection = (probabilities * targets).sum(dims)
    total = probabilities.sum(dims) + targets.sum(dims)
    return 1.0 - (2.0 * intersection + eps) / (total + eps)


def supervised_loss(logits: Tensor, masks: Tensor) -> Tensor:
    """0.5 (BCE + soft Dice): the two-term loss of the SSL4MIS baselines, for one foreground.

    logits: (B, 1, H, W); masks: (B, 1, H, W) float in [0, 1].
    """
    bce = F.binary_cross_entropy_with_logits(logits, masks)
    dice = soft_dice_loss(torch.sigmoid(logits), masks)
    return 0.5 * (bce + dice)


def probability_mse(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Mean squared difference of sigmoid probabilities; the teacher side carries no gradient."""
    return F.mse_loss(torch.sigmoid(student_logits), torch.sigmoid(teacher_logits.detach()))
