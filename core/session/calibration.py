"""The pixel-size choices made in the window, shared by every tab, and which applies to a file.

A pixel-size CSV names files by name only, so it is applied only to files in the folders it was
given for (its own folder tree and the folders open when it was loaded): a CSV loaded for folder A
never calibrates a same-named file of folder B.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..spacing import Spacing, calibrate_two_points, lookup_csv_size, read_pixel_csv


def spacing_override(
    path: str | Path,
    per_file: Spacing | None,
    all_files_mm: float | None,
    csv_sizes: dict[str, float] | None,
) -> Spacing | None:
    """The choice that applies to `path`, or None to keep the file's own (DICOM) spacing.

    The precedence of the window's choices, most explicit first: this file's calibration or
    typed size > one size for all files > the pixel CSV's entry (already limited to the CSV's
    folders). The one adapter between the session and `core.spacing`.
    """
    if per_file is not None:
        return per_file
    if all_files_mm is not None:
        return Spacing.square(all_files_mm, "user")
    csv_mm = lookup_csv_size(csv_sizes, path)
    return Spacing.square(csv_mm, "csv") if csv_mm is not None else None


def two_point_spacing(
    p1_xy: tuple[float, float],
    p2_xy: tuple[float, float],
    distance_mm: float,
    image_shape: tuple[int, int],
) -> Spacing:
    """Calibration from two points a known distance apart, both inside the (H, W) image.

    Raises ValueError saying what is wrong.
    """
    height, width = image_shape[:2]
    for x, y in (p1_xy, p2_xy):
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError("a calibration point is not a number")
        if not (-0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5):
            raise ValueError(
                f"the point ({x:.0f}, {y:.0f}) lies outside the {width}x{height} image"
            )
    return calibrate_two_points(p1_xy, p2_xy, distance_mm)


def _folder(path: str | Path) -> Path:
    """The folder a file is in (a folder stands for itself)."""
    path = Path(path).expanduser().absolute()
    return path if path.is_dir() else path.parent


@dataclass(frozen=True)
class PixelCsv:
    """A loaded pixel-size CSV and the folders whose files it calibrates."""

    path: str
    sizes: dict[str, float]
    folders: tuple[str, ...]

    def applies_to(self, path: str | Path) -> bool:
        folder = _folder(path)
        return any(folder == Path(f) or Path(f) in folder.parents for f in self.folders)


class CalibrationState:
    """Per-file spacings (two-point calibration or a typed size), one size for all files, and a
    pixel-size CSV with its folders. `override(path)` gives the one that applies.

    `listeners(paths)` are called after a change with the paths it may affect (None: all).
    """

    def __init__(self) -> None:
        self._per_file: dict[str, Spacing] = {}
        self._all_files_mm: float | None = None
        self._csv: PixelCsv | None = None
        self.listeners: list[Callable[[set[str] | None], None]] = []

    # Reading -----------------------------------------------------------------------------------
    def override(self, path: str | Path) -> Spacing | None:
        csv = self._csv
        csv_sizes = csv.sizes if csv is not None and csv.applies_to(path) else None
        return spacing_override(path, self._per_file.get(str(path)), self._all_files_mm, csv_sizes)

    @property
    def all_files_mm(self) -> float | None:
        return self._all_files_mm

    @property
    def pixel_csv(self) -> PixelCsv | None:
        return self._csv

    def is_empty(self) -> bool:
        return not self._per_file and self._all_files_mm is None and self._csv is None

    # Changing ----------------------------------------------------------------------------------
    def set_for_file(self, path: str | Path, spacing: Spacing | None) -> None:
        """A calibration or typed size for one file; None forgets it."""
        if spacing is None:
            self._per_file.pop(str(path), None)
        else:
            self._per_file[str(path)] = spacing
        self._changed({str(path)})

    def set_for_all_files(self, mm: float | None) -> None:
        if mm is not None and not (math.isfinite(mm) and mm > 0):
            raise ValueError(f"a pixel size must be a positive number of mm, got {mm}")
        self._all_files_mm = mm
        self._changed(None)

    def load_csv(self, path: str | Path, for_files: Iterable[str | Path] = ()) -> int:
        """Read an HC18-style `filename,pixel size(mm)` CSV for the files of its own folder tree
        and the folders of `for_files`; returns the number of sizes. Raises OSError or
        ValueError (naming the file) when it cannot be read; the previous CSV then stays."""
        sizes = read_pixel_csv(path)
        folders = {str(_folder(path))} | {str(_folder(f)) for f in for_files}
        self._csv = PixelCsv(str(Path(path).absolute()), sizes, tuple(sorted(folders)))
        self._changed(None)
        return len(sizes)

    def forget_csv(self) -> None:
        self._csv = None
        self._changed(None)

    def _changed(self, paths: set[str] | None) -> None:
        for listener in list(self.listeners):
            listener(paths)

    # Saving ------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        csv = self._csv
        return {
            "per_file": {p: spacing_json(s) for p, s in self._per_file.items()},
            "all_files_mm": self._all_files_mm,
            "pixel_csv": None
            if csv is None
            else {"path": csv.path, "sizes": csv.sizes, "folders": list(csv.folders)},
        }

    def restore(self, data: dict) -> None:
        """Put back what `to_json` gave (raises KeyError/TypeError/ValueError on bad data)."""
        per_file = {str(p): spacing_from_json(s) for p, s in data.get("per_file", {}).items()}
        all_mm = data.get("all_files_mm")
        csv = data.get("pixel_csv")
        pixel_csv = None
        if csv is not None:
            sizes = {str(k): float(v) for k, v in csv["sizes"].items()}
            pixel_csv = PixelCsv(str(csv["path"]), sizes, tuple(map(str, csv["folders"])))
        self._per_file = per_file
        self._all_files_mm = None if all_mm is None else float(all_mm)
        self._csv = pixel_csv
        self._changed(None)


def spacing_json(spacing: Spacing) -> dict:
    return {"row_mm": spacing.row_mm, "col_mm": spacing.col_mm, "source": spacing.source}


def spacing_from_json(data: dict) -> Spacing:
    return Spacing(float(data["row_mm"]), float(data["col_mm"]), str(data["source"]))
