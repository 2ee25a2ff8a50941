"""Tensor operations of ERSR (Zhou et al., IEEE JBHI 2025, arXiv 2508.19815).

ERSR refines a mean teacher's pseudo-labels for fetal head segmentation in three steps, each a
group of functions here (the method class in `methods/ersr.py` combines them):

1. dual-scoring adaptive filtering: rank the teacher's probability maps by boundary roughness
   (mean Sobel magnitude) and shape irregularity (mean |Laplacian| of the distance transform of
   the thresholded map) and keep the most regular fraction of the batch;
2. ellipse-constrained refinement: fit an ellipse to the largest component of each map, raise
   the probability inside it, damp it outside, threshold;
3. symmetry-based consistency: reflect about the fitted ellipse's major axis (the head's
   midline), build mirrored composite images, perturb inside the head, and ask the student for
   predictions that agree with their own mirror images.

Shapes: probability maps and images are (B, 1, H, W) float tensors; pixel coordinates follow the
project convention (x, y) = (column, row) with pixel centres at integer coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..ellipse import MIN_FIT_POINTS, Ellipse, fit_ellipse_to_points, subpixel_contour
from .losses import soft_dice_loss

# ---------------------------------------------------------------------------------------------
# Supervised loss
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# 1. Dual-scoring adaptive filtering
# ---------------------------------------------------------------------------------------------

_SOBEL_X = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 8.0
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def _conv3x3(maps: Tensor, kernel: Tensor) -> Tensor:
    """(B, 1, H, W) convolved with a 3x3 kernel, border replicated (no edge at the frame edge)."""
    padded = F.pad(maps, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kernel.to(maps).view(1, 1, 3, 3))


def boundary_scores(prob: Tensor) -> Tensor:
    """(B,) mean Sobel gradient magnitude of each (B, 1, H, W) map: lower = smoother boundary."""
    grad_x = _conv3x3(prob, _SOBEL_X)
    grad_y = _conv3x3(prob, _SOBEL_X.T)
    return torch.sqrt(grad_x**2 + grad_y**2 + 1e-12).mean(dim=(1, 2, 3))


def distance_transforms(masks: Tensor) -> Tensor:
    """(B, 1, H, W) exact Euclidean distance (px) from each foreground pixel to the background.

    Computed with OpenCV on the CPU: the maps are thresholded teacher outputs (no gradient to
    keep), the exact transform costs well under a millisecond at network resolution, and the
    ellipse fit that follows needs the maps on the CPU anyway. (An iterated-convolution
    approximation on the device would give city-block-like distances whose Laplacian is noisy
    along diagonal boundaries, blurring the very irregularity this score measures.)
    """
    as_uint8 = masks.detach().to("cpu", torch.uint8).numpy()
    distances = [
        cv2.distanceTransform(mask[0], cv2.DIST_L2, cv2.DIST_MASK_PRECISE) for mask in as_uint8
    ]
    return torch.from_numpy(np.stack(distances)[:, None]).to(masks.device, torch.float32)


def regularity_scores(prob: Tensor, level: float = 0.5) -> Tensor:
    """(B,) mean |Laplacian| of the distance transform of prob > level: lower = more regular.

    The distance map of a smooth convex shape has one short ridge (its medial axis); every bump,
    notch or speckle of a ragged shape adds ridges, where the Laplacian is large.
    """
    distances = distance_transforms(prob > level)
    return _conv3x3(distances, _LAPLACIAN).abs().mean(dim=(1, 2, 3))


def _min_max(scores: Tensor) -> Tensor:
    low, high = scores.min(), scores.max()
    return (scores - low) / (high - low).clamp_min(1e-12)


def quality_scores(prob: Tensor, boundary_weight: float = 0.5, level: float = 0.5) -> Tensor:
    """(B,) combined score, lower is better: w * boundary + (1 - w) * regularity.

    Each score is min-max normalised over the batch first so that neither dominates by its
    unit. A map with no pixel above `level` (no head found) scores +inf: its distance transform
    is zero everywhere, which would otherwise rank it as perfectly regular.
    """
    empty = ~(prob > level).flatten(1).any(dim=1)
    combined = torch.full(empty.shape, math.inf, device=prob.device)
    if (~empty).any():
        found = prob[~empty]
        combined[~empty] = boundary_weight * _min_max(boundary_scores(found)) + (
            1 - boundary_weight
        ) * _min_max(regularity_scores(found, level))
    return combined


def kept_fraction(ramp: float, start: float = 0.5) -> float:
    """Fraction of the unlabelled batch to keep: `start` at ramp 0, growing to 1 at ramp 1."""
    return start + (1 - start) * min(max(ramp, 0.0), 1.0)


def keep_count(
    batch_size: int, fraction: float, small_batch: int = 4, small_fraction: float = 0.75
) -> int:
    """How many maps to keep: floor(fraction * B), but at least `small_fraction` of a batch
    smaller than `small_batch` (ranking two or three maps says little), and at least one."""
    count = math.floor(fraction * batch_size + 1e-9)
    if batch_size < small_batch:
        count = max(count, math.ceil(small_fraction * batch_size - 1e-9))
    return min(max(count, 1), batch_size)


def select_reliable(prob: Tensor, count: int, boundary_weight: float = 0.5) -> Tensor:
    """(count,) long indices of the `count` best-scoring maps of (B, 1, H, W), best first."""
    scores = quality_scores(prob, boundary_weight)
    return torch.argsort(scores, stable=True)[:count]


# ---------------------------------------------------------------------------------------------
# 2. Ellipse-constrained pseudo-label refinement
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefineConfig:
    """Constants of the refinement (the paper's values as defaults)."""

    level: float = 0.6  # threshold of the component and of the final pseudo-label
    fill_base: float = 0.6  # inside the ellipse P' >= fill_base + (1 - d)^fill_power
    fill_power: float = 2.0
    decay: float = 0.5  # outside the ellipse P' = P * exp(-decay * (d - 1))


def fit_head_ellipse(prob_hw: np.ndarray, level: float = 0.6) -> Ellipse | None:
    """Least-squares ellipse (pixels) of the largest component of a (H, W) map above `level`.

    The fit uses the component's sub-pixel `level` contour (holes filled). None when nothing
    exceeds `level`, the contour is too short to fit, or the fit is degenerate (a semi-axis
    under one pixel, or an ellipse larger than twice the frame's diagonal).
    """
    contour = subpixel_contour(prob_hw, level)
    if len(contour) < MIN_FIT_POINTS:
        return None
    try:
        ellipse = fit_ellipse_to_points(contour)
    except (ValueError, np.linalg.LinAlgError):
        return None
    if not (ellipse.b >= 1.0 and ellipse.a <= 2 * math.hypot(*prob_hw.shape)):
        return None
    return ellipse


def pixel_grid(height: int, width: int, device: torch.device | str) -> tuple[Tensor, Tensor]:
    """((H, W), (H, W)) float32 column (x) and row (y) coordinates of the pixel centres."""
    rows, cols = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return cols, rows


def refine_map(
    prob_hw: Tensor, ellipse: Ellipse, config: RefineConfig, grid: tuple[Tensor, Tensor]
) -> Tensor:
    """(H, W) refined probability P': raised inside the ellipse, decayed outside it.

    `grid` is `pixel_grid(H, W)` on the map's device; d is the normalised elliptic radius
    squared; inside (d <= 1) P' = max(P, clip(fill_base + (1 - d)^fill_power, 0, 1)), outside
    P' = P exp(-decay (d - 1)).
    """
    d = ellipse.normalised_radius_sq(*grid)
    fill = (config.fill_base + (1 - d).clamp_min(0) ** config.fill_power).clamp(0, 1)
    decayed = prob_hw * torch.exp(-config.decay * (d - 1).clamp_min(0))
    return torch.where(d <= 1, torch.maximum(prob_hw, fill), decayed)


@dataclass(frozen=True)
class Refinement:
    """Refined pseudo-labels of a batch.

    `pseudo_label`: (B, 1, H, W) float in {0, 1}; `refined`: (B, 1, H, W) P' before the
    threshold; `ellipses`: the fitted pixel ellipse per map, None where no ellipse could be
    fitted (that map's pseudo-label is then the plain thresholded teacher map).
    """

    pseudo_label: Tensor
    refined: Tensor
    ellipses: list[Ellipse | None]


def refine_pseudo_labels(
    prob: Tensor, config: RefineConfig = RefineConfig(), use_ellipse: bool = True
) -> Refinement:
    """Ellipse-constrained refinement of a (B, 1, H, W) teacher map (no gradient).

    Only the ellipse fits run on the CPU; the refinement itself stays on the map's device.
    With `use_ellipse=False` the ellipses are still fitted (the symmetry step needs their axes)
    but the pseudo-label is the thresholded teacher map.
    """
    prob = prob.detach()
    maps = prob.to("cpu", torch.float32).numpy()[:, 0]
    ellipses = [fit_head_ellipse(prob_hw, config.level) for prob_hw in maps]
    refined = prob.clone()
    if use_ellipse:
        grid = pixel_grid(prob.shape[2], prob.shape[3], prob.device)
        for index, ellipse in enumerate(ellipses):
            if ellipse is not None:
                refined[index, 0] = refine_map(prob[index, 0], ellipse, config, grid)
    return Refinement((refined > config.level).to(prob.dtype), refined, ellipses)


# ---------------------------------------------------------------------------------------------
# 3. Symmetry: reflection about the head's midline, mirrored composites, perturbation
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Consistency losses
# ---------------------------------------------------------------------------------------------


def mirror_loss(prob: Tensor, axes: Tensor) -> Tensor:
    """MSE between side one of each map and the reflection of its side two.

    Reflecting the side-two half lands it on side one, so this is the mean over all pixels of
    (side_one * (P - reflect(P)))^2.
    """
    side_one, _ = axis_sides(axes, prob.shape[2], prob.shape[3])
    return ((side_one * (prob - reflect(prob, axes))) ** 2).mean()
