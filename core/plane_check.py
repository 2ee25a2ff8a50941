"""Is there a fetal head at all? The check every automatic ellipse passes before an HC is shown.

A segmentation network always draws something: an all-black frame, a cardiac echo or a photograph
can come out with a neat ellipse. Two checks stand between that ellipse and a number:

- **geometric sanity** (`geometry_reasons`): the ellipse's centre lies inside the frame, most of
  its outline lies inside the frame, and a calibrated HC is a size a fetal head can have;
- **a learned head-plane check** (`PlaneCheck`): a logistic regression over the network's own
  evidence (`plane_features`: how decided and how elliptical the probability map is, how much of
  it lies outside the head, how bright the skull band is against the inside and the outside of
  the head). Its coefficients and feature normalisation are a small JSON file written by
  `benchmarks/fit_plane_check.py` (the only source of the shipped file; see docs/plane_check.md).

`head_plane_reasons` runs both and returns why a frame is not a fetal head ([] when it passes).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .biometry import biometry_from_ellipse
from .ellipse import Components, Ellipse, ellipse_on_map_grid
from .ellipse_field import EllipseField, field_for
from .order_stats import median, percentile
from .spacing import Spacing

# Plausible fetal HC in mm. Below 50: before ~11 weeks, where a head is measured by CRL, not HC
# (the smallest HC18 head is 56.8 mm; the Hadlock and INTERGROWTH charts start at ~14 weeks,
# ~95 mm). Above 400: beyond +4 SD of a 42-week head (~ 370 mm; HC18's largest is 346.4 mm).
HC_RANGE_MM = (50.0, 400.0)
# At least this share of the ellipse outline must lie inside the frame: a head cut by the frame
# edge is measured (HC18 has such frames, down to ~80 % inside) but an ellipse mostly outside the
# frame is an extrapolation, not a measurement.
MIN_INSIDE_FRACTION = 0.6
# A frame whose grey values hardly vary (std below ~2.5 grey levels of 255) shows nothing.
MIN_FRAME_STD = 0.01
# Inside the skull a head plane shows brain and speckle: on the HC18 frames the grey-level SD
# within 0.7 of the annotated ellipse is at least 0.023 (0..1 scale); an empty ring has none.
MIN_INSIDE_STD = 0.01

FEATURES: tuple[str, ...] = (
    "fit_iou",
    "border_confidence",
    "area_fraction",
    "axis_ratio",
    "inside_fraction",
    "prob_mean",
    "prob_inside",
    "prob_outside",
    "stray_fraction",
    "blob_count",
    "skull_minus_inside",
    "skull_minus_outside",
    "skull_z",
    "skull_p90_minus_inside",
    "skull_coverage",
    "fine_texture",
    "frame_std",
)
# Normalised-radius bands on the ellipse (1 = the fitted outer skull border).
_INSIDE_BAND = (0.0, 0.7)
_SKULL_BAND = (0.85, 1.0)
_OUTSIDE_BAND = (1.1, 1.4)
_WIDE_SKULL_BAND = (0.8, 1.05)  # for the bright-skull percentile: the fit may sit off the ring
# Every band lies within the outside band's edge: the ellipse's field on the map over this
# normalised radius^2 holds them all (`measure_frame` has the fit work it out once).
FIELD_LIMIT = _OUTSIDE_BAND[1] ** 2
_SECTORS = 16  # angular sectors for the skull's coverage around the head (a power of two)
_MIN_BLOB_FRACTION = 0.002  # components smaller than 0.2 % of the map are not counted
_OUTLINE_POINTS = 360
_NO_PIXELS = (slice(0, 0), slice(0, 0))  # the window of an ellipse whose bands miss the map
DEFAULT_CHECK_FILE = "plane_check.json"


def inside_fraction(ellipse_px: Ellipse, frame_shape: tuple[int, int]) -> float:
    """Share (0-1) of the ellipse outline that lies inside a (H, W) frame."""
    return _inside_fraction(ellipse_px, (int(frame_shape[0]), int(frame_shape[1])))


# The geometric check and the features both ask, for the same frame and ellipse: once is enough.
@functools.lru_cache(maxsize=8)
def _inside_fraction(ellipse_px: Ellipse, frame_shape: tuple[int, int]) -> float:
    points = ellipse_px.points(_OUTLINE_POINTS)
    height, width = frame_shape
    inside = (
        (points[:, 0] >= -0.5)
        & (points[:, 0] <= width - 0.5)
        & (points[:, 1] >= -0.5)
        & (points[:, 1] <= height - 0.5)
    )
    return float(inside.mean())


def _band(radius_sq: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """The pixels whose normalised radius lies in [band[0], band[1])."""
    return (radius_sq >= band[0] ** 2) & (radius_sq < band[1] ** 2)


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


@dataclass(frozen=True)
class _BandPixels:
    """A band's grey levels and ellipse-frame coordinates (u, v), gathered once for the band's
    mean and for its sector means."""

    grey: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @classmethod
    def of(cls, at: np.ndarray, grey: np.ndarray, u: np.ndarray, v: np.ndarray) -> _BandPixels:
        """The band's pixels at the flat indices `at` of the (flat) `grey`, `u` and `v`."""
        return cls(grey.take(at), u.take(at), v.take(at))

    def sector_means(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean grey level per angular sector, whether the sector has pixels of the band)."""
        # The angle only of the band's pixels (arctan2 over the whole map cost a millisecond).
        angle = np.arctan2(self.v, self.u)
        angle += math.pi  # in place: the values of (angle + pi) * (sectors / 2 pi)
        angle *= _SECTORS / (2 * math.pi)
        # x & (n - 1) is x % n for every integer when n is a power of two, a tenth of the time.
        sector = angle.astype(int) & (_SECTORS - 1)
        sums = np.bincount(sector, self.grey, minlength=_SECTORS)
        counts = np.bincount(sector, minlength=_SECTORS)
        return sums / np.maximum(counts, 1), counts > 0


def _skull_coverage(
    skull: _BandPixels, outside: _BandPixels, inside: float, spread: float
) -> float:
    """Share of the angular sectors around the head (of those on the map) whose skull band is
    brighter than both the head's inside and the sector's own outside, by a quarter of the
    frame's spread: a real skull shows most of the way round, an accidental ellipse does not."""
    skull_means, has_skull = skull.sector_means()
    outside_means, has_outside = outside.sector_means()
    outside_means = np.where(has_outside, outside_means, inside)
    valid = int(has_skull.sum())
    if valid == 0:
        return 0.0
    bright = has_skull & (skull_means > np.maximum(inside, outside_means) + 0.25 * spread)
    return float(bright.sum()) / valid


def plane_features(
    pixels: np.ndarray,
    prob: np.ndarray,
    ellipse_px: Ellipse,
    fit_iou: float,
    border_confidence: float,
    frame_on_grid: np.ndarray | None = None,
    *,
    ellipse_on_map: Ellipse | None = None,
    component_areas: np.ndarray | None = None,
    map_field: EllipseField | None = None,
) -> dict[str, float]:
    """The evidence for a head plane, one finite float per name in `FEATURES`.

    `pixels`: the (H, W) 0..1 frame; `prob`: the (h, w) network probability covering it;
    `ellipse_px`: the fitted ellipse in frame pixels; `fit_iou` and `border_confidence` as the
    measurement reports them. Intensities are compared on the network grid (the frame resized
    to `prob`'s shape, INTER_AREA; `frame_on_grid` when the caller has it already), where the
    ellipse bands are cheap to evaluate. `ellipse_on_map` (`ellipse_px` on `prob`'s grid),
    `component_areas` (`Components.areas` of prob > 0.5) and `map_field` (`ellipse_on_map`'s
    `EllipseField` on that grid, out to at least `FIELD_LIMIT`), when the caller has them
    already (an `EllipseFit` carries all three), are not worked out again.
    """
    frame_shape = pixels.shape
    map_shape = prob.shape
    if frame_on_grid is not None and frame_on_grid.shape == map_shape:
        grey = np.asarray(frame_on_grid, dtype=np.float32)
    else:
        grey = cv2.resize(
            np.asarray(pixels, dtype=np.float32),
            (map_shape[1], map_shape[0]),
            interpolation=cv2.INTER_AREA,
        )
    on_map = ellipse_on_map
    if on_map is None:
        on_map = ellipse_on_map_grid(ellipse_px, frame_shape, map_shape)
    # Every band lies within the outside band's edge: its pixels are all in this window, in the
    # same order as on the whole map (so the same means), and the rest of the map is never read.
    near = field_for(on_map, map_shape, FIELD_LIMIT, map_field)
    window = near.window or _NO_PIXELS
    # Flat, row-major: a band's pixels gathered by index come in the order a 2-D mask gives
    # them, and a gather by index is cheaper than one mask per array.
    u, v, radius_sq = near.u.ravel(), near.v.ravel(), near.radius_sq.ravel()
    near_grey, near_prob = grey[window].ravel(), prob[window].ravel()

    areas = component_areas if component_areas is not None else Components.of(prob > 0.5).areas
    total = float(areas.sum())
    stray = 1.0 - float(areas.max()) / total if total > 0 else 1.0
    blobs = int(np.count_nonzero(areas >= _MIN_BLOB_FRACTION * prob.size))

    # Each band's pixels once: the grey levels, the probability and the sectors read the same.
    inside_at = np.flatnonzero(_band(radius_sq, _INSIDE_BAND))  # also the core's median
    skull_pixels = _BandPixels.of(np.flatnonzero(_band(radius_sq, _SKULL_BAND)), near_grey, u, v)
    outside_at = np.flatnonzero(_band(radius_sq, _OUTSIDE_BAND))
    outside_pixels = _BandPixels.of(outside_at, near_grey, u, v)
    inside_grey = near_grey.take(inside_at)
    wide_grey = near_grey[_band(radius_sq, _WIDE_SKULL_BAND)]

    frame_mean, frame_std = float(grey.mean()), float(grey.std())
    skull = _mean_or_nan(skull_pixels.grey)
    inside = _mean_or_nan(inside_grey)
    outside = _mean_or_nan(outside_pixels.grey)
    # A band that falls wholly outside the map (a huge ellipse) carries no evidence: 0 contrast.
    skull = frame_mean if math.isnan(skull) else skull
    inside = skull if math.isnan(inside) else inside
    outside = skull if math.isnan(outside) else outside
    skull_p90 = percentile(wide_grey, 90) if wide_grey.size else skull
    inside_median = median(inside_grey) if inside_grey.size else inside
    fine = cv2.GaussianBlur(grey, (0, 0), 1.0)
    np.abs(np.subtract(grey, fine, out=fine), out=fine)  # |grey - blurred|, in place
    prob_inside = _mean_or_nan(near_prob.take(inside_at))
    prob_outside = _mean_or_nan(near_prob.take(outside_at))

    features = {
        "fit_iou": float(fit_iou),
        "border_confidence": float(border_confidence),
        "area_fraction": math.pi * ellipse_px.a * ellipse_px.b / (frame_shape[0] * frame_shape[1]),
        "axis_ratio": ellipse_px.b / ellipse_px.a if ellipse_px.a > 0 else 0.0,
        "inside_fraction": inside_fraction(ellipse_px, frame_shape),
        "prob_mean": float(prob.mean()),
        "prob_inside": 0.0 if math.isnan(prob_inside) else prob_inside,
        "prob_outside": 1.0 if math.isnan(prob_outside) else prob_outside,
        "stray_fraction": stray,
        "blob_count": math.log1p(blobs),
        "skull_minus_inside": skull - inside,
        "skull_minus_outside": skull - outside,
        "skull_z": (skull - frame_mean) / (frame_std + 0.01),
        "skull_p90_minus_inside": skull_p90 - inside_median,
        "skull_coverage": _skull_coverage(skull_pixels, outside_pixels, inside, frame_std),
        "fine_texture": float(fine.mean()) / (frame_std + 0.01),
        "frame_std": frame_std,
    }
    return {name: (value if math.isfinite(value) else 0.0) for name, value in features.items()}


@dataclass(frozen=True)
class PlaneCheck:
    """A fitted logistic regression: p(head plane) = sigmoid(bias + weights . z), where
    z = (features - mean) / std; a frame passes when p >= threshold.

    `model` names the segmentation model whose outputs it was fitted on; `source` says how.
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    model: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        sizes = {len(self.features), len(self.mean), len(self.std), len(self.weights)}
        if len(sizes) != 1:
            raise ValueError("plane check: features, mean, std and weights differ in length")
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"plane check: unknown features {sorted(unknown)}")
        if any(s <= 0 or not math.isfinite(s) for s in self.std):
            raise ValueError("plane check: every std must be positive")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"plane check: threshold must be in (0, 1), got {self.threshold}")

    def score(self, features: Mapping[str, float]) -> float:
        """p(head plane) in 0..1 for one frame's `plane_features`."""
        values = np.array([features[name] for name in self.features], dtype=np.float64)
        z = (values - np.array(self.mean)) / np.array(self.std)
        logit = float(self.bias + np.dot(np.array(self.weights), z))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """p(head plane) for an (n, len(features)) matrix in `self.features` order."""
        z = (np.asarray(matrix, dtype=np.float64) - np.array(self.mean)) / np.array(self.std)
        logits = np.clip(self.bias + z @ np.array(self.weights), -50.0, 50.0)
        return 1.0 / (1.0 + np.exp(-logits))

    def to_json(self) -> dict[str, object]:
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "std": list(self.std),
            "weights": list(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
            "model": self.model,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PlaneCheck:
        def floats(key: str) -> tuple[float, ...]:
            return tuple(float(v) for v in data[key])  # type: ignore[union-attr]

        return cls(
            features=tuple(str(name) for name in data["features"]),  # type: ignore[union-attr]
            mean=floats("mean"),
            std=floats("std"),
            weights=floats("weights"),
            bias=float(data["bias"]),  # type: ignore[arg-type]
            threshold=float(data["threshold"]),  # type: ignore[arg-type]
            model=str(data.get("model", "")),
            source=str(data.get("source", "")),
        )

    @classmethod
    def load(cls, path: str | Path) -> PlaneCheck:
        """Read a check written by `to_json`; ValueError naming the file when it is unusable."""
        path = Path(path)
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path.name}: not a usable plane check ({error})") from None


_default_check: PlaneCheck | None = None


def default_plane_check() -> PlaneCheck:
    """The check shipped in `hc_studio.resources` (read once)."""
    global _default_check
    if _default_check is None:
        shipped = resources.files("hc_studio.resources").joinpath(DEFAULT_CHECK_FILE)
        _default_check = PlaneCheck.load(Path(str(shipped)))
    return _default_check


def geometry_reasons(
    ellipse_px: Ellipse, frame_shape: tuple[int, int], spacing: Spacing
) -> list[str]:
    """Why an ellipse cannot be a fetal head measured on this frame ([] when it can)."""
    reasons = []
    height, width = frame_shape
    if not (-0.5 <= ellipse_px.cx <= width - 0.5 and -0.5 <= ellipse_px.cy <= height - 0.5):
        reasons.append("ellipse centre outside the frame")
    share = inside_fraction(ellipse_px, frame_shape)
    if share < MIN_INSIDE_FRACTION:
        reasons.append(f"only {share:.0%} of the ellipse inside the frame")
    if spacing.calibrated:
        hc = biometry_from_ellipse(ellipse_px, spacing).hc
        low, high = HC_RANGE_MM
        if not (math.isfinite(hc) and low <= hc <= high):
            reasons.append(f"HC {hc:.0f} mm outside the plausible {low:.0f}-{high:.0f} mm")
    return reasons


def _inside_pixels(pixels: np.ndarray, ellipse_px: Ellipse, scale: float) -> np.ndarray:
    """The frame's pixels within `scale` times the ellipse (about its centre)."""
    mask = np.zeros(pixels.shape[:2], np.uint8)
    centre = (float(ellipse_px.cx), float(ellipse_px.cy))
    axes = (2 * scale * float(ellipse_px.a), 2 * scale * float(ellipse_px.b))
    cv2.ellipse(mask, (centre, axes, math.degrees(ellipse_px.angle)), 1, -1)
    window = _drawn_window(mask.shape, centre, axes, ellipse_px.angle)
    return np.asarray(pixels)[window][mask[window] > 0]


def _drawn_window(
    shape: tuple[int, ...], centre: tuple[float, float], axes: tuple[float, float], angle: float
) -> tuple[slice, slice]:
    """A (rows, cols) window of a (H, W) grid holding every pixel cv2.ellipse fills for this
    box (full axes), the whole grid when the box is not finite.

    cv2.ellipse draws the ellipse turned to a whole degree (at most half a degree off, which
    moves no point of it by more than a * 0.0088 px) as a polygon of points on it rounded to
    the pixel grid, filled with its edges: every filled pixel lies within a pixel and a half of
    the exact ellipse's bounding box grown by that. The margin is twice that. Reading only this
    window gives the same pixels in the same order as reading the whole frame, in a fraction
    of the time.
    """
    height, width = shape[0], shape[1]
    values = (*centre, *axes, angle)
    if not all(math.isfinite(value) for value in values):
        return slice(0, height), slice(0, width)
    half_a, half_b = 0.5 * abs(axes[0]), 0.5 * abs(axes[1])
    margin = 3.0 + 0.02 * max(half_a, half_b)
    c, s = math.cos(angle), math.sin(angle)
    half_x = math.hypot(half_a * c, half_b * s) + margin
    half_y = math.hypot(half_a * s, half_b * c) + margin
    corners = (centre[0] - half_x, centre[0] + half_x, centre[1] - half_y, centre[1] + half_y)
    if not all(math.isfinite(value) for value in corners):
        return slice(0, height), slice(0, width)
    rows = slice(
        min(max(math.floor(centre[1] - half_y), 0), height),
        max(min(math.ceil(centre[1] + half_y) + 1, height), 0),
    )
    cols = slice(
        min(max(math.floor(centre[0] - half_x), 0), width),
        max(min(math.ceil(centre[0] + half_x) + 1, width), 0),
    )
    return rows, cols


def head_plane_reasons(
    pixels: np.ndarray,
    prob: np.ndarray,
    ellipse_px: Ellipse,
    fit_iou: float,
    border_confidence: float,
    spacing: Spacing,
    check: PlaneCheck | None = None,
    frame_on_grid: np.ndarray | None = None,
    *,
    ellipse_on_map: Ellipse | None = None,
    component_areas: np.ndarray | None = None,
    map_field: EllipseField | None = None,
) -> list[str]:
    """Why this frame and fit are not a fetal head plane ([] when they are).

    `check` defaults to the shipped `default_plane_check()`; `frame_on_grid`, `ellipse_on_map`,
    `component_areas` and `map_field` go to `plane_features`.
    """
    # OpenCV's one-pass standard deviation: a third of numpy's time on a full frame.
    _, frame_std = cv2.meanStdDev(np.asarray(pixels, dtype=np.float32))
    if float(frame_std[0, 0]) < MIN_FRAME_STD:
        return ["blank frame (no contrast)"]
    reasons = geometry_reasons(ellipse_px, pixels.shape, spacing)
    inside = _inside_pixels(pixels, ellipse_px, scale=0.7)
    if inside.size and float(inside.std()) < MIN_INSIDE_STD:
        reasons.append("nothing inside the skull outline (no brain texture)")
    check = check or default_plane_check()
    features = plane_features(
        pixels,
        prob,
        ellipse_px,
        fit_iou,
        border_confidence,
        frame_on_grid,
        ellipse_on_map=ellipse_on_map,
        component_areas=component_areas,
        map_field=map_field,
    )
    score = check.score(features)
    if score < check.threshold:
        reasons.append(f"head-plane score {score:.2f} < {check.threshold:.2f}")
    return reasons


def feature_matrix(rows: Sequence[Mapping[str, float]], names: Sequence[str]) -> np.ndarray:
    """(n, len(names)) float64 matrix of `plane_features` results."""
    return np.array([[row[name] for name in names] for row in rows], dtype=np.float64)
