"""Ellipses: the geometry type shared by fitting, biometry, display and export.

Convention: (x, y) = (column, row); `a >= b` are semi-axes; `angle` (radians, [0, pi)) is the
direction of the `a` axis from +x towards +y (image y points down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    a: float
    b: float
    angle: float

    @classmethod
    def normalised(cls, cx: float, cy: float, a: float, b: float, angle: float) -> "Ellipse":
        """Build with a >= b and angle folded into [0, pi)."""
        a, b = abs(float(a)), abs(float(b))
        if b > a:
            a, b = b, a
            angle += math.pi / 2
        return cls(float(cx), float(cy), a, b, float(angle) % math.pi)

    def conic(self) -> np.ndarray:
        """3x3 symmetric matrix C with [x y 1] C [x y 1]^T = 0 on the ellipse."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        rot = np.array([[c, -s], [s, c]])
        inner = rot @ np.diag([1 / self.a**2, 1 / self.b**2]) @ rot.T
        centre = np.array([self.cx, self.cy])
        conic = np.zeros((3, 3))
        conic[:2, :2] = inner
        conic[:2, 2] = conic[2, :2] = -inner @ centre
        conic[2, 2] = centre @ inner @ centre - 1
        return conic

    @classmethod
    def from_conic(cls, conic: np.ndarray) -> "Ellipse":
        inner = conic[:2, :2]
        centre = np.linalg.solve(inner, -conic[:2, 2])
        k = -(conic[2, 2] + conic[:2, 2] @ centre)
        eigvals, eigvecs = np.linalg.eigh(inner / k)
        if np.any(eigvals <= 0):
            raise ValueError("conic is not an ellipse")
        # eigh sorts ascending: the smallest eigenvalue belongs to the longest axis.
        a, b = 1 / math.sqrt(eigvals[0]), 1 / math.sqrt(eigvals[1])
        angle = math.atan2(eigvecs[1, 0], eigvecs[0, 0])
        return cls.normalised(centre[0], centre[1], a, b, angle)

    def scaled(self, sx: float, sy: float) -> "Ellipse":
        """The exact image of this ellipse under x -> sx * x, y -> sy * y (e.g. px <-> mm)."""
        if math.isclose(sx, sy, rel_tol=1e-12):
            return Ellipse(self.cx * sx, self.cy * sy, self.a * sx, self.b * sx, self.angle)
        inv = np.diag([1 / sx, 1 / sy, 1.0])
        return Ellipse.from_conic(inv @ self.conic() @ inv)

    def points(self, n: int = 360) -> np.ndarray:
        """(n, 2) points (x, y) along the ellipse."""
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        c, s = math.cos(self.angle), math.sin(self.angle)
        x = self.cx + self.a * np.cos(t) * c - self.b * np.sin(t) * s
        y = self.cy + self.a * np.cos(t) * s + self.b * np.sin(t) * c
        return np.stack([x, y], axis=1)

    def axis_endpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """((2, 2) major-axis ends, (2, 2) minor-axis ends) as (x, y) rows."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        centre = np.array([self.cx, self.cy])
        major = np.array([c, s]) * self.a
        minor = np.array([-s, c]) * self.b
        return np.stack([centre - major, centre + major]), np.stack([centre - minor, centre + minor])

    def normalised_radius_sq(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """d = (u/a)^2 + (v/b)^2 in the ellipse frame: < 1 inside, 1 on, > 1 outside."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = xs - self.cx, ys - self.cy
        u = dx * c + dy * s
        v = -dx * s + dy * c
        return (u / self.a) ** 2 + (v / self.b) ** 2
