"""Segmentation metrics between (H, W) bool masks, with surface distances in mm.

Conventions:
* Surface = mask XOR its erosion by a 4-connected cross, the frame border counting as outside
  (a mask touching the edge has a surface there), as in medpy's surface distances.
* Distances use each axis's own pixel size (`Spacing.col_mm` along x, `row_mm` along y); with an
  uncalibrated spacing (1 x 1 "px") they are in pixels.
* Hausdorff is the maximum of both directed distances; HD95 is the 95th percentile of the
  pooled surface distances of both directions (medpy's `hd95`); ASD is the average symmetric
  surface distance: the mean of the pooled distances of both directions.
* Empty masks: both empty -> Dice = IoU = 1 and every distance 0 (perfect agreement on "no
  head"); exactly one empty -> Dice = IoU = 0 and every distance `inf` (no surface to measure to).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .spacing import Spacing

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_PAIRS_PER_CHUNK = 4_000_000


def _as_bool(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask, dtype=bool)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_bool(a), _as_bool(b)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} and {b.shape}")
    return a, b


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A & B| / (|A| + |B|) in [0, 1]; 1.0 when both masks are empty."""
    a, b = _pair(a, b)
    total = np.count_nonzero(a) + np.count_nonzero(b)
    if total == 0:
        return 1.0
    return 2.0 * np.count_nonzero(a & b) / total


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union in [0, 1]; 1.0 when both masks are empty."""
    a, b = _pair(a, b)
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return np.count_nonzero(a & b) / union


def surface(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of `mask` with a 4-neighbour outside it (the frame border is outside)."""
    padded = np.pad(_as_bool(mask), 1).astype(np.uint8)
    eroded = cv2.erode(padded, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (padded.astype(bool) & ~eroded.astype(bool))[1:-1, 1:-1]


def _distances_to(target_surface: np.ndarray, points_rc: np.ndarray, spacing: Spacing):
    """Distance (mm) from each (row, col) point to the nearest pixel of `target_surface`."""
    if spacing.isotropic:
        # Exact Euclidean distance transform (OpenCV's precise mask is Felzenszwalb's algorithm).
        field = cv2.distanceTransform(
            (~target_surface).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
        )
        return field[points_rc[:, 0], points_rc[:, 1]].astype(np.float64) * spacing.row_mm
    # Anisotropic spacing: exact nearest neighbour in mm by brute force, in chunks.
    scale = np.array([spacing.row_mm, spacing.col_mm])
    targets = np.argwhere(target_surface) * scale
    sources = points_rc * scale
    chunk = max(1, _PAIRS_PER_CHUNK // len(targets))
    nearest = np.empty(len(sources))
    for start in range(0, len(sources), chunk):
        diff = sources[start : start + chunk, None, :] - targets[None, :, :]
        nearest[start : start + chunk] = np.sqrt((diff**2).sum(axis=2).min(axis=1))
    return nearest


def _surface_distances(a: np.ndarray, b: np.ndarray, spacing: Spacing):
    """(A->B, B->A) directed surface distances in mm, or None when a mask is empty."""
    surface_a, surface_b = surface(a), surface(b)
    if not surface_a.any() or not surface_b.any():
        return None
    a_to_b = _distances_to(surface_b, np.argwhere(surface_a), spacing)
    b_to_a = _distances_to(surface_a, np.argwhere(surface_b), spacing)
    return a_to_b, b_to_a


def _empty_case(a: np.ndarray, b: np.ndarray) -> float:
    return 0.0 if not a.any() and not b.any() else math.inf


def hausdorff_mm(a: np.ndarray, b: np.ndarray, spacing: Spacing) -> float:
    """Symmetric Hausdorff distance between the mask surfaces, in mm."""
    a, b = _pair(a, b)
    distances = _surface_distances(a, b, spacing)
    if distances is None:
        return _empty_case(a, b)
    return float(max(distances[0].max(), distances[1].max()))


def hd95_mm(a: np.ndarray, b: np.ndarray, spacing: Spacing) -> float:
    """95th percentile of the pooled surface distances of both directions, in mm."""
    a, b = _pair(a, b)
    distances = _surface_distances(a, b, spacing)
    if distances is None:
        return _empty_case(a, b)
    return float(np.percentile(np.concatenate(distances), 95))


def asd_mm(a: np.ndarray, b: np.ndarray, spacing: Spacing) -> float:
    """Average symmetric surface distance (mean of both directions' pooled distances), in mm."""
    a, b = _pair(a, b)
    distances = _surface_distances(a, b, spacing)
    if distances is None:
        return _empty_case(a, b)
    return float(np.concatenate(distances).mean())


def hc_difference(pred_mm: float, ref_mm: float) -> tuple[float, float]:
    """(pred - ref, |pred - ref|): the HC18 challenge's difference and absolute difference."""
    diff = float(pred_mm) - float(ref_mm)
    return diff, abs(diff)


@dataclass(frozen=True)
class SegmentationScores:
    """Overlap (0-1) and surface distances (in `unit`: "mm", or "px" when uncalibrated)."""

    dice: float
    iou: float
    hausdorff: float
    hd95: float
    asd: float
    unit: str


def score_masks(pred: np.ndarray, ref: np.ndarray, spacing: Spacing) -> SegmentationScores:
    """Every metric of a predicted (H, W) bool mask against a reference (distances found once)."""
    pred, ref = _pair(pred, ref)
    distances = _surface_distances(pred, ref, spacing)
    if distances is None:
        hausdorff = hd95 = asd = _empty_case(pred, ref)
    else:
        pooled = np.concatenate(distances)
        hausdorff, hd95, asd = pooled.max(), np.percentile(pooled, 95), pooled.mean()
    return SegmentationScores(
        dice=dice(pred, ref),
        iou=iou(pred, ref),
        hausdorff=float(hausdorff),
        hd95=float(hd95),
        asd=float(asd),
        unit=spacing.unit,
    )
