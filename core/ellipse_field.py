"""An ellipse's normalised coordinates at the pixel centres of a grid, worked out once.

Measuring a frame reads the normalised radius of the same ellipse on the probability map's grid
three times, over nested windows: the fit's IoU (radius 1), the border confidence (1.25) and the
head-plane bands (1.4). Worked out once over the widest window, a narrower window's values are a
slice of it: the same float operations at the same pixel centres, so the same numbers bit for
bit as `Ellipse.radius_sq_in_window`, without two more passes over most of the map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

_EMPTY = np.zeros((0, 0))


class Ellipse(Protocol):
    """What a field reads of a `core.ellipse.Ellipse` (which builds fields: importing it here
    would make an import circle)."""

    @property
    def cx(self) -> float: ...
    @property
    def cy(self) -> float: ...
    @property
    def a(self) -> float: ...
    @property
    def b(self) -> float: ...
    @property
    def angle(self) -> float: ...

    def pixel_window(
        self, shape: tuple[int, int], radius_sq: float = 1.0
    ) -> tuple[slice, slice] | None: ...


@dataclass(frozen=True)
class EllipseField:
    """`u`, `v`: the ellipse-frame coordinates of the pixel centres of `window` divided by the
    semi-axes (u along `a`); `radius_sq` = u^2 + v^2, the normalised radius squared (< 1 inside).
    `window` is `ellipse.pixel_window(shape, limit)`, None (and the arrays (0, 0)) when that
    lies outside the grid."""

    ellipse: Ellipse
    shape: tuple[int, int]
    limit: float
    window: tuple[slice, slice] | None
    u: np.ndarray
    v: np.ndarray
    radius_sq: np.ndarray

    @classmethod
    def of(cls, ellipse: Ellipse, shape: tuple[int, int], limit: float = 1.0) -> EllipseField:
        """The field of `ellipse` on an (h, w) grid over its window grown to radius^2 `limit`."""
        shape = (int(shape[0]), int(shape[1]))
        window = ellipse.pixel_window(shape, radius_sq=limit)
        if window is None:
            return cls(ellipse, shape, limit, None, _EMPTY, _EMPTY, _EMPTY)
        rows, cols = window
        ys = np.arange(rows.start, rows.stop, dtype=np.float64)[:, np.newaxis]
        xs = np.arange(cols.start, cols.stop, dtype=np.float64)[np.newaxis, :]
        # The operations and their order of `Ellipse.normalised_radius_sq`: the same bits.
        c, s = math.cos(ellipse.angle), math.sin(ellipse.angle)
        dx, dy = xs - ellipse.cx, ys - ellipse.cy
        u = (dx * c + dy * s) / ellipse.a
        v = (-dx * s + dy * c) / ellipse.b
        return cls(ellipse, shape, limit, window, u, v, u * u + v * v)

    def serves(self, ellipse: Ellipse, shape: tuple[int, int], limit: float) -> bool:
        """True when this field holds `ellipse` on `shape` over (at least) radius^2 `limit`."""
        same_grid = self.shape == (int(shape[0]), int(shape[1]))
        return self.ellipse == ellipse and same_grid and limit <= self.limit

    def narrowed(self, limit: float) -> EllipseField:
        """The field over the (nested) window grown to radius^2 `limit` <= `self.limit`: views
        of this field's arrays."""
        if limit == self.limit:
            return self
        if limit > self.limit:
            raise ValueError(f"a field grown to {self.limit} cannot serve {limit}")
        window = self.ellipse.pixel_window(self.shape, radius_sq=limit)
        if window is None or self.window is None:
            return EllipseField(self.ellipse, self.shape, limit, None, _EMPTY, _EMPTY, _EMPTY)
        top, left = self.window[0].start, self.window[1].start
        inner = (
            slice(window[0].start - top, window[0].stop - top),
            slice(window[1].start - left, window[1].stop - left),
        )
        return EllipseField(
            self.ellipse,
            self.shape,
            limit,
            window,
            self.u[inner],
            self.v[inner],
            self.radius_sq[inner],
        )


def field_for(
    ellipse: Ellipse, shape: tuple[int, int], limit: float, field: EllipseField | None
) -> EllipseField:
    """`field` narrowed to `limit` when it serves this ellipse and grid, else a new field."""
    if field is not None and field.serves(ellipse, shape, limit):
        return field.narrowed(limit)
    return EllipseField.of(ellipse, shape, limit)
