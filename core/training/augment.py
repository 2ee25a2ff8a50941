"""Batch augmentation on tensors: flips, small rotation / scale / shift, intensity, and
(optional) acoustic shadows.

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
    # Probability that a frame gets an acoustic shadow (`_shadow`); 0 draws no random numbers,
    # so runs without it repeat the augmentations of runs made before it existed.
    shadow: float = 0.0
    shadow_width: tuple[float, float] = (0.05, 0.2)  # band width as a share of the frame width
    shadow_depth: tuple[float, float] = (0.4, 0.9)  # share of the echo the band takes away


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


def _shadow(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Images with a vertical band darkened in a random share `config.shadow` of them.

    Why: the largest HC errors of the shipped models sit where one lateral skull wall is faint
    or shadowed. A wall parallel to the beam reflects little, and bone or the probe's contact
    casts shadows along the beam (down the frame); the reference outline still goes through
    them. A band of reduced echo across the frame, with soft edges, makes the network place the
    outline where the wall is missing from the rest of the skull. Masks are not changed.
    """
    n, _, _, w = images.shape
    chosen = torch.rand(n, generator=generator) < config.shadow
    centre = _uniform(n, 0.0, 1.0, generator)
    width = _uniform(n, *config.shadow_width, generator)
    depth = _uniform(n, *config.shadow_depth, generator) * chosen
    x = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    # A raised-cosine band: full depth at its centre, none beyond half its width.
    distance = ((x[None, :] - centre[:, None]) / (width[:, None] / 2)).clamp(-1, 1)
    band = 0.5 * (1 + torch.cos(math.pi * distance))
    gain = (1 - depth[:, None] * band).view(n, 1, 1, w).to(images.device, images.dtype)
    return images * gain


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
    if config.shadow > 0:
        warped = _shadow(warped, config, generator)
    if masks is None:
        return warped, None
    warped_masks = F.grid_sample(masks, grid, mode="bilinear", align_corners=False)
    return warped, (warped_masks > 0.5).to(masks.dtype)
