"""ERSR's supervised loss (Zhou et al., IEEE JBHI 2025): (Dice-focal + BCE) / 2.

Used in both stages (the warm-up and the semi-supervised steps), so they optimise the same L_sup.
An optional signed-distance boundary term (`distance_loss`) can be added to it: HC is measured on
the outline, and Dice, focal and BCE weigh a pixel one pixel off the border no more than one
that is ten pixels off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...losses import soft_dice_loss, soft_dice_per_sample
from .filtering import distance_transforms


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """Binary focal loss (Lin et al. 2017) on logits, mean over pixels; gamma=0 gives BCE."""
    return focal_map(logits, target, gamma).mean()


def focal_map(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """The focal loss of each pixel (`focal_loss` before the mean)."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    prob_true = torch.exp(-bce)  # the probability given to the true class
    return (1 - prob_true) ** gamma * bce


def signed_distances(masks: Tensor) -> Tensor:
    """(B, 1, H, W) Euclidean distance (px) of each pixel to the mask's border: positive outside
    the mask, negative inside.

    A mask with no foreground or no background has no border to measure from: its map is 0.
    """
    foreground = masks > 0.5
    inside = distance_transforms(foreground)
    outside = distance_transforms(~foreground)
    has_border = foreground.any(dim=(1, 2, 3)) & (~foreground).any(dim=(1, 2, 3))
    return (outside - inside) * has_border.view(-1, 1, 1, 1)


def distance_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Boundary loss (Kervadec et al., MIDL 2019), shifted so that the target itself scores 0.

    The mean over pixels of signed distance x (probability - target): probability put k pixels
    outside the reference border, or taken away k pixels inside it, costs k per unit, so the
    outline's placement is what is penalised, in proportion to how far off it is.
    """
    return (signed_distances(target) * (torch.sigmoid(logits) - target)).mean()


def ersr_supervised_loss(
    logits: Tensor,
    target: Tensor,
    distance_weight: float = 0.0,
    sample_weights: Tensor | None = None,
) -> Tensor:
    """ERSR's supervised term: (Dice-focal + BCE) / 2, Dice-focal being Dice + focal (gamma 2),
    plus `distance_weight` x `distance_loss` when that weight is not 0.

    `logits`, `target`: (B, 1, H, W); target in {0, 1}. `sample_weights` (B,), when given, weigh
    each frame's loss (a weighted mean over the batch: weights of mean 1 keep the loss's scale).
    """
    if sample_weights is not None:
        return (per_frame_supervised_loss(logits, target, distance_weight) * sample_weights).mean()
    dice_focal = soft_dice_loss(torch.sigmoid(logits), target) + focal_loss(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    loss = (dice_focal + bce) / 2
    if distance_weight:
        loss = loss + distance_weight * distance_loss(logits, target)
    return loss


def per_frame_supervised_loss(
    logits: Tensor, target: Tensor, distance_weight: float = 0.0
) -> Tensor:
    """(B,) `ersr_supervised_loss` of each frame on its own (its mean is the batch's loss)."""
    dims = (1, 2, 3)
    prob = torch.sigmoid(logits)
    dice = soft_dice_per_sample(prob, target)
    focal = focal_map(logits, target).mean(dims)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dims)
    loss = (dice + focal + bce) / 2
    if distance_weight:
        loss = loss + distance_weight * (signed_distances(target) * (prob - target)).mean(dims)
    return loss
