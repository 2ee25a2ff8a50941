"""ERSR's supervised loss (Zhou et al., IEEE JBHI 2025): (Dice-focal + BCE) / 2.

Used in both stages (the warm-up and the semi-supervised steps), so they optimise the same L_sup.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...losses import soft_dice_loss


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """Binary focal loss (Lin et al. 2017) on logits, mean over pixels; gamma=0 gives BCE."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    prob_true = torch.exp(-bce)  # the probability given to the true class
    return ((1 - prob_true) ** gamma * bce).mean()


def ersr_supervised_loss(logits: Tensor, target: Tensor) -> Tensor:
    """ERSR's supervised term: (Dice-focal + BCE) / 2, Dice-focal being Dice + focal (gamma 2).

    `logits`, `target`: (B, 1, H, W); target in {0, 1}.
    """
    dice_focal = soft_dice_loss(torch.sigmoid(logits), target) + focal_loss(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    return (dice_focal + bce) / 2
