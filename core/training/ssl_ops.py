"""Pieces shared by several semi-supervised methods (CAD, M3HL, C3S3, TransMedSeg).

Shapes follow `method_api`: images, masks and probabilities are `(B, 1, H, W)`; networks return
logits of that shape. Nothing here draws random numbers from anything but torch's global
generator, so the trainer's seeding and checkpointed RNG states cover it.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from .losses import supervised_loss
from .method_api import Batch, StepOutput, TrainContext


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


def build_partner(student: nn.Module, device: torch.device, flip_dilation: bool = False):
    """A second U-Net with the student's configuration and its own random initialisation.

    flip_dilation: give the partner the other bottleneck (dilated vs plain), a cheap way of
    making the two networks differ in architecture, as methods with heterogeneous sub-networks
    ask. Needs a student with the `UNet.config` dict.
    """
    from hc_studio.models.unet import build_unet

    config = getattr(student, "config", None)
    if not isinstance(config, dict):
        raise TypeError("this method needs a U-Net student (with a `config` dict)")
    config = dict(config)
    if flip_dilation:
        config["dilated_bottleneck"] = not config.get("dilated_bottleneck", False)
    return build_unet(config).to(device)


def two_network_warmup(student: nn.Module, partner: nn.Module, batch: Batch) -> StepOutput:
    """Supervised warm-up of two networks at once: the sum of their BCE + Dice losses.

    Both networks start the semi-supervised phase trained, so neither hands the other
    pseudo-labels from a random initialisation.
    """
    student_loss = supervised_loss(student(batch.labelled_images), batch.labelled_masks)
    partner_loss = supervised_loss(partner(batch.labelled_images), batch.labelled_masks)
    scalars = {"sup": float(student_loss.detach()), "sup_partner": float(partner_loss.detach())}
    return StepOutput(student_loss + partner_loss, scalars)
