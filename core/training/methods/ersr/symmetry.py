"""ERSR step 3, symmetry-based consistency.

Frames and maps are reflected about the fitted ellipse's major axis (the head's midline),
mirrored composite images are built and perturbed inside the head, and the student is asked for
predictions that agree with their own mirror images (`mirror_loss`).

Shapes: images and probability maps are (B, 1, H, W) float tensors; axes are (B, 4)
[cx, cy, cos, sin] in pixel coordinates (x, y) = (column, row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ....ellipse import Ellipse
from .refinement import pixel_grid


def axis_parameters(ellipses: list[Ellipse], device: torch.device | str = "cpu") -> Tensor:
    """(B, 4) [cx, cy, cos, sin] of each ellipse's major axis (the fetal head's midline).

    The brain is mirror-symmetric about the falx, which runs front to back along the skull's
    long (occipito-frontal) axis; the minor axis has no such symmetry.
    """
    rows = [[e.cx, e.cy, math.cos(e.angle), math.sin(e.angle)] for e in ellipses]
    return torch.tensor(rows, dtype=torch.float32, device=device).reshape(-1, 4)


def reflection_theta(axes: Tensor, height: int, width: int) -> Tensor:
    """(B, 2, 3) `F.affine_grid` matrices (align_corners=False) reflecting about each axis.

    In pixels p' = c + R (p - c) with R = 2 u u^T - I for the unit direction u; pixel = S n + t
    maps normalised coordinates n in [-1, 1] to pixels (S = diag(W/2, H/2), t = ((W-1)/2,
    (H-1)/2)), so in normalised coordinates n' = S^-1 R S n + S^-1 (R - I)(t - c).
    """
    centre, cos, sin = axes[:, :2], axes[:, 2], axes[:, 3]
    cos2, sin2 = cos**2 - sin**2, 2 * sin * cos
    reflect = torch.stack([torch.stack([cos2, sin2], -1), torch.stack([sin2, -cos2], -1)], -2)
    scale = axes.new_tensor([width / 2, height / 2])
    offset = axes.new_tensor([(width - 1) / 2, (height - 1) / 2])
    linear = reflect * scale[None, None, :] / scale[None, :, None]  # S^-1 R S
    eye = torch.eye(2, device=axes.device, dtype=axes.dtype)
    translation = ((reflect - eye) @ (offset - centre)[..., None])[..., 0] / scale
    return torch.cat([linear, translation[..., None]], dim=2)


def reflect(maps: Tensor, axes: Tensor) -> Tensor:
    """(B, C, H, W) maps reflected about each sample's axis (bilinear, zeros from outside).

    Differentiable with respect to `maps`; an involution up to interpolation.
    """
    batch, channels, height, width = maps.shape
    theta = reflection_theta(axes.to(maps), height, width)
    grid = F.affine_grid(theta, [batch, channels, height, width], align_corners=False)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def axis_sides(axes: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """((B, 1, H, W), (B, 1, H, W)) float indicators of the two sides of each axis.

    Side one has signed distance v <= 0 from the axis, side two v >= 0; both hold the axis
    itself so that a composite has no crack along it.
    """
    cols, rows = pixel_grid(height, width, axes.device)
    cx, cy, cos, sin = (axes[:, i, None, None] for i in range(4))
    signed = -(cols - cx) * sin + (rows - cy) * cos  # along the minor-axis direction
    side_one = (signed <= 0).to(axes.dtype)[:, None]
    side_two = (signed >= 0).to(axes.dtype)[:, None]
    return side_one, side_two


def mirrored_composites(maps: Tensor, axes: Tensor) -> Tensor:
    """(2B, C, H, W): each map's side one + its reflection, then side two + its reflection.

    Each composite is symmetric about the axis by construction. Used alike for images, for
    pseudo-label masks and for the student's predictions, so that image and target match.
    """
    mirrored = reflect(maps, axes)
    side_one, side_two = axis_sides(axes, maps.shape[2], maps.shape[3])
    first = side_one * maps + (1 - side_one) * mirrored
    second = side_two * maps + (1 - side_two) * mirrored
    return torch.cat([first, second], dim=0)


@dataclass(frozen=True)
class PerturbConfig:
    """Intensity perturbations inside the head (each applied with probability `prob`)."""

    prob: float = 0.2
    noise_std: float = 0.05
    gamma: tuple[float, float] = (1.2, 1.8)
    shift: float = 0.1
    blur_sigma: tuple[float, float] = (0.5, 1.5)


def _uniform(low: float, high: float, count: int, device: torch.device) -> Tensor:
    return low + (high - low) * torch.rand(count, 1, 1, 1, device=device)


def _gamma_curve(images: Tensor, gammas: Tensor) -> Tensor:
    """Per-image gamma on the image's own intensity range (as a contrast change)."""
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    span = (images.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-8)
    return ((images - low) / span).clamp(0, 1) ** gammas * span + low


def _gaussian_blur(images: Tensor, sigmas: Tensor, radius: int) -> Tensor:
    """(B, 1, H, W) blurred with a separable Gaussian of each image's own sigma."""
    batch, _, height, width = images.shape
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernels = torch.exp(-(offsets**2) / (2 * sigmas.view(batch, 1) ** 2))
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    grouped = F.pad(images.view(1, batch, height, width), (radius,) * 4, mode="reflect")
    grouped = F.conv2d(grouped, kernels.view(batch, 1, 1, -1), groups=batch)
    grouped = F.conv2d(grouped, kernels.view(batch, 1, -1, 1), groups=batch)
    return grouped.view(batch, 1, height, width)


def perturb_inside(images: Tensor, mask: Tensor, config: PerturbConfig = PerturbConfig()) -> Tensor:
    """(B, 1, H, W) images with noise, gamma, shift and blur applied only where mask > 0.5.

    Each operation is drawn per image with probability `config.prob` (global torch RNG).
    Pixels outside the mask are returned unchanged.
    """
    batch, device = images.shape[0], images.device
    inside = (mask > 0.5).to(images.dtype)
    radius = math.ceil(3 * config.blur_sigma[1])
    operations = (
        lambda x: x + config.noise_std * torch.randn_like(x),
        lambda x: _gamma_curve(x, _uniform(*config.gamma, batch, device)),
        lambda x: x + _uniform(-config.shift, config.shift, batch, device),
        lambda x: _gaussian_blur(x, _uniform(*config.blur_sigma, batch, device), radius),
    )
    out = images
    for operation in operations:
        chosen = (torch.rand(batch, 1, 1, 1, device=device) < config.prob).to(images.dtype)
        out = out + chosen * inside * (operation(out) - out)
    return out


def perturb_halves(
    composites: Tensor, head: Tensor, axes2: Tensor, config: PerturbConfig
) -> Tensor:
    """Perturb each side of the head in (2B, 1, H, W) composites independently.

    Drawing the two sides apart breaks the composite's symmetry in appearance but not in shape,
    which is what the mirror consistency asks the student to see through.
    """
    side_one, side_two = axis_sides(axes2, composites.shape[2], composites.shape[3])
    side_two = side_two * (1 - side_one)  # the axis line belongs to side one only
    out = perturb_inside(composites, head * side_one, config)
    return perturb_inside(out, head * side_two, config)


def mirror_loss(prob: Tensor, axes: Tensor) -> Tensor:
    """MSE between side one of each map and the reflection of its side two.

    Reflecting the side-two half lands it on side one, so this is the mean over all pixels of
    (side_one * (P - reflect(P)))^2.
    """
    side_one, _ = axis_sides(axes, prob.shape[2], prob.shape[3])
    return ((side_one * (prob - reflect(prob, axes))) ** 2).mean()
