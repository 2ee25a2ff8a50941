"""ERSR step 2, ellipse-constrained refinement of the teacher's pseudo-labels.

An ellipse is fitted to the largest component of each probability map; the probability is
raised inside it and damped outside, then thresholded into the pseudo-label.

Shapes: probability maps are (B, 1, H, W) float tensors; pixel coordinates follow the project
convention (x, y) = (column, row) with pixel centres at integer coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ....ellipse import MIN_FIT_POINTS, Ellipse, fit_ellipse_to_points, subpixel_contour


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
