"""Deep supervision: the decoder's coarser levels are trained to predict the mask as well.

A 1x1 convolution per level turns its features into logits, upsampled to the frame's size and
scored with the same loss as the network's output (Lee et al., AISTATS 2015; nnU-Net weighs the
levels 1/2, 1/4, ... from the finest). The heads are training-only: they are an extra module of
the method, outside the network, so nothing of them is exported and the shipped graph and its
speed are those of the network alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class AuxiliaryHeads(nn.Module):
    """One 1x1 convolution per decoder level (`level_channels`, coarse to fine) to logits."""

    def __init__(self, level_channels: Sequence[int]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Conv2d(channels, 1, 1) for channels in level_channels)

    def forward(self, levels: Sequence[Tensor], size: tuple[int, int]) -> list[Tensor]:
        """Logits (B, 1, *size) of each level, coarse to fine."""
        if len(levels) != len(self.heads):
            raise ValueError(f"expected {len(self.heads)} decoder levels, got {len(levels)}")
        return [
            F.interpolate(head(features), size=size, mode="bilinear")
            for head, features in zip(self.heads, levels)
        ]


def level_weights(count: int) -> list[float]:
    """Weights of `count` levels, coarse to fine: the finest 1/2, the next 1/4, and so on."""
    return [0.5 ** (count - index) for index in range(count)]


def deep_supervision_loss(
    level_logits: Sequence[Tensor], target: Tensor, loss: Callable[[Tensor, Tensor], Tensor]
) -> Tensor:
    """The weighted sum of `loss(level_logits[k], target)` over the levels (coarse to fine)."""
    weights = level_weights(len(level_logits))
    return sum(w * loss(logits, target) for w, logits in zip(weights, level_logits))
