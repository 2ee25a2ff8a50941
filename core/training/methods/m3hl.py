"""M3HL: Mutual Mask Mix with High-Low level feature consistency (Liu et al.; public code
PHPJava666/M3HL), for one foreground.

Each step after the warm-up:
1. the EMA teacher predicts the unlabelled frames, returning its bottleneck and last decoder
   features; its thresholded prediction, cut to the largest connected component, is the
   pseudo-label;
2. a random block mask M per pair (half of the blocks; blocks a quarter of the shorter side,
   the code's 64 px on 256 px) mixes the frames in both directions into spatially
   complementary pairs: unlabelled a where M = 1 and labelled a elsewhere; labelled b where
   M = 1 and unlabelled b elsewhere; the targets mix the same way;
3. the student learns the mixed frames with BCE + Dice, pseudo-labelled pixels weighted by
   `unlabelled_weight`, and its features on each mixed frame are pulled towards the teacher's
   features of the unlabelled frame it contains, over the pixels that came from it: L1 on the
   last decoder features (low level), 1 - cosine on the bottleneck (high level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import ssl_ops
from ..method_api import Batch, Method, StepOutput


@dataclass(frozen=True)
class M3HLConfig:
    use_mix: bool = True  # mutual mask mix; off: labelled and unlabelled frames as they are
    use_high: bool = True  # bottleneck (high level) feature consistency
    use_low: bool = True  # last decoder (low level) feature consistency
    largest_component: bool = True  # pseudo-label cut to its largest connected component
    mask_ratio: float = 0.5  # fraction of blocks taken from the first frame of a pair
    block_fraction: float = 0.25  # block side as a fraction of the shorter image side
    unlabelled_weight: float = 0.5  # weight of pseudo-labelled pixels in the mixed loss
    feature_weight: float = 0.5  # weight of (low + high)


def block_masks(count: int, height: int, width: int, block: int, ratio: float, device) -> Tensor:
    """(count, 1, H, W) float masks in {0, 1}: round(ratio x blocks) random blocks set to 1.

    The frame is tiled by `block` x `block` squares (the last row / column may be cut short);
    each mask draws its own blocks from torch's global generator.
    """
    rows, cols = math.ceil(height / block), math.ceil(width / block)
    chosen = round(ratio * rows * cols)
    order = torch.rand(count, rows * cols, device=device).argsort(dim=1)
    grid = torch.zeros(count, rows * cols, device=device)
    grid.scatter_(1, order[:, :chosen], 1.0)
    grid = grid.view(count, 1, rows, cols)
    upsampled = grid.repeat_interleave(block, dim=2).repeat_interleave(block, dim=3)
    return upsampled[..., :height, :width].contiguous()


def mutual_mix(first: Tensor, second: Tensor, mask: Tensor) -> Tensor:
    """first where mask = 1, second where mask = 0 (images or targets, (B, C, H, W))."""
    return first * mask + second * (1.0 - mask)


def weighted_supervised_loss(logits: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """0.5 (pixel-weighted BCE + weighted soft Dice), the mixed-frame loss.

    Dice is computed per source (weight level) as in the reference code, then weighted: with
    weights 1 (labelled) and u (pseudo-labelled) this is 1 x Dice(labelled pixels) + u x Dice
    (pseudo-labelled pixels).
    """
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    bce = (bce * weight).sum() / weight.sum().clamp(min=1e-6)
    prob = torch.sigmoid(logits)
    dice = logits.new_zeros(())
    for level in torch.unique(weight):
        region = (weight == level).float()
        inter = (prob * target * region).sum()
        total = ((prob + target) * region).sum()
        dice = dice + level * (1.0 - (2.0 * inter + 1e-5) / (total + 1e-5))
    return 0.5 * (bce + dice)


def low_level_loss(student: Tensor, teacher: Tensor, region: Tensor) -> Tensor:
    """Mean absolute difference of (B, C, H, W) features over `region` (B, 1, H, W) pixels."""
    diff = (student - teacher).abs() * region
    return diff.sum() / (region.sum() * student.shape[1]).clamp(min=1.0)


def high_level_loss(student: Tensor, teacher: Tensor, region: Tensor) -> Tensor:
    """1 - cosine similarity of each frame's bottleneck features inside `region`, averaged.

    region: (B, 1, H, W) at full resolution, averaged down to the bottleneck's size.
    """
    small = F.adaptive_avg_pool2d(region, student.shape[-2:])
    cos = F.cosine_similarity((student * small).flatten(1), (teacher * small).flatten(1), dim=1)
    return (1.0 - cos).mean()


class M3HL(Method):
    name = "m3hl"
    Config = M3HLConfig
    needs_teacher = True

    def pseudo_labels(self, unlabelled: Tensor):
        """(pseudo-labels (B, 1, H, W) in {0, 1}, teacher feature dict) for the frames."""
        with torch.no_grad():
            logits, features = self.ctx.teacher(unlabelled, return_features=True)
            labels = logits > 0
            if self.config.largest_component:
                labels = ssl_ops.largest_component(labels)
        return labels.float(), features

    def mixed_inputs(self, batch: Batch, pseudo: Tensor):
        """(images, targets, pixel weights, region from the unlabelled frame, unlabelled index).

        With mixing, the first half of the unlabelled frames goes into the labelled frames
        (direction a) and the labelled frames go into the second half (direction b); labelled
        frames are cycled to pair every unlabelled one.
        """
        c = self.config
        labelled, masks, unlabelled = (
            batch.labelled_images,
            batch.labelled_masks,
            batch.unlabelled_images,
        )
        n_u = unlabelled.shape[0]
        u_weight = torch.full_like(pseudo, c.unlabelled_weight)
        if not c.use_mix:
            region = torch.cat([torch.zeros_like(masks), torch.ones_like(pseudo)])
            weights = torch.cat([torch.ones_like(masks), u_weight])
            index = torch.arange(n_u, device=unlabelled.device)
            return (
                torch.cat([labelled, unlabelled]),
                torch.cat([masks, pseudo]),
                weights,
                region,
                torch.cat([torch.full((labelled.shape[0],), -1, device=index.device), index]),
            )
        height, width = unlabelled.shape[-2:]
        block = max(round(c.block_fraction * min(height, width)), 1)
        mask = block_masks(n_u, height, width, block, c.mask_ratio, unlabelled.device)
        pair = torch.arange(n_u, device=unlabelled.device) % labelled.shape[0]
        half = (n_u + 1) // 2
        # Direction a: unlabelled where M = 1; direction b: unlabelled where M = 0.
        from_unlabelled = torch.cat([mask[:half], 1.0 - mask[half:]])
        images = mutual_mix(unlabelled, labelled[pair], from_unlabelled)
        targets = mutual_mix(pseudo, masks[pair], from_unlabelled)
        weights = mutual_mix(u_weight, torch.ones_like(u_weight), from_unlabelled)
        return images, targets, weights, from_unlabelled, torch.arange(n_u, device=pair.device)

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        pseudo, teacher_features = self.pseudo_labels(batch.unlabelled_images)
        images, targets, weights, region, source = self.mixed_inputs(batch, pseudo)
        logits, features = self.ctx.student(images, return_features=True)
        mixed = weighted_supervised_loss(logits, targets, weights)
        has_source = source >= 0
        src = source[has_source]
        terms = {"low": logits.new_zeros(()), "high": logits.new_zeros(())}
        if self.config.use_low:
            terms["low"] = low_level_loss(
                features["decoder"][has_source],
                teacher_features["decoder"][src],
                region[has_source],
            )
        if self.config.use_high:
            terms["high"] = high_level_loss(
                features["bottleneck"][has_source],
                teacher_features["bottleneck"][src],
                region[has_source],
            )
        feature = terms["low"] + terms["high"]
        weight = self.config.feature_weight * self.ctx.rampup(step)
        # The mixed loss carries both the labels and the pseudo-labels, as in the reference
        # code; only the feature terms ramp up.
        scalars = {
            "sup": float(mixed.detach()),
            "unsup": float(feature.detach()),
            "weight": weight,
            "low": float(terms["low"].detach()),
            "high": float(terms["high"].detach()),
        }
        return StepOutput(mixed + weight * feature, scalars)
