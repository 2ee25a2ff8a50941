"""Batch augmentation on tensors: flips, small rotation / scale / shift, intensity.

Runs on whole `(B, 1, h, w)` batches (on the training device), drawing every random number from
the generator passed in, so a resumed run repeats the same augmentations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AugmentConfig:
    flip_x: float = 0.5  # probability of a left-right flip
    flip_y: float = 0.5  # probability of an up-down flip (heads lie in any orientation)
    rotate_deg: float = 15.0
    scale: float = 0.1  # zoom factor drawn in [1 - scale, 1 + scale]
    shift: float = 0.05  # shift as a fraction of the size
    brightness: float = 0.1
    contrast: float = 0.1
    gamma: float = 0.2  # gamma drawn in [1 / (1 + gamma), 1 + gamma]


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _affine_theta(
    n: int, size: tuple[int, int], config: AugmentConfig, generator: torch.Generator
) -> Tensor:
    """(n, 2, 3) affine_grid matrices (output -> input, normalised coordinates).

    Rotation is made in pixel units (normalised coordinates stretch x by w/h), so shapes rotate
    without shearing on a non-square input.
    """
    h, w = size
    angle = torch.deg2rad(_uniform(n, -config.rotate_deg, config.rotate_deg, generator))
    zoom = _uniform(n, 1 - config.scale, 1 + config.scale, generator)
    flip_x = torch.where(torch.rand(n, generator=generator) < config.flip_x, -1.0, 1.0)
    flip_y = torch.where(torch.rand(n, generator=generator) < config.flip_y, -1.0, 1.0)
    shift = _uniform(2 * n, -2 * config.shift, 2 * config.shift, generator).view(n, 2)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    aspect = w / h
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * flip_x
    theta[:, 0, 1] = -sin / aspect * flip_y
    theta[:, 1, 0] = sin * aspect * flip_x
    theta[:, 1, 1] = cos * flip_y
    theta[:, :, 2] = shift
    return theta


def _intensity(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    n = images.shape[0]
    log_gamma = _uniform(n, -math.log1p(config.gamma), math.log1p(config.gamma), generator)
    contrast = _uniform(n, 1 - config.contrast, 1 + config.contrast, generator)
    brightness = _uniform(n, -config.brightness, config.brightness, generator)
    shape = (n, 1, 1, 1)
    gamma, contrast, brightness = (
        t.view(shape).to(images.device) for t in (log_gamma.exp(), contrast, brightness)
    )
    return (images.clamp(0, 1) ** gamma * contrast + brightness).clamp_(0, 1)


def augment(
    images: Tensor,
    masks: Tensor | None,
    generator: torch.Generator,
    config: AugmentConfig = AugmentConfig(),
) -> tuple[Tensor, Tensor | None]:
    """Augmented copies of images (B, 1, h, w) float 0..1 and masks (same shape, {0, 1}) or None.

    The same geometric transform is applied to an image and its mask; masks are resampled
    bilinearly and thresholded at 0.5, so they stay binary.
    """
    n, _, h, w = images.shape
    theta = _affine_theta(n, (h, w), config, generator).to(images.device)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    warped = _intensity(warped, config, generator)
    if masks is None:
        return warped, None
    warped_masks = F.grid_sample(masks, grid, mode="bilinear", align_corners=False)
    return warped, (warped_masks > 0.5).to(masks.dtype)
