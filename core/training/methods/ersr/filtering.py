"""ERSR step 1, dual-scoring adaptive filtering of the teacher's probability maps.

The maps are ranked by boundary roughness (mean Sobel magnitude) and shape irregularity (mean
|Laplacian| of the distance transform of the thresholded map); the most regular fraction of the
batch is kept, a fraction that grows with the ramp-up.

Shapes: probability maps are (B, 1, H, W) float tensors.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

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
