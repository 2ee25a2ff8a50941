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

from ..spacing import (
    PixelSizeTable,
    Spacing,
    SpacingPolicy,
    calibrate_two_points,
    read_pixel_table,
)


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
    pixel-size CSV with its folders, as the window's choices. Which one applies to a file is
    decided by the one `core.spacing.SpacingPolicy` this state holds (`override(path)`).

    `listeners(paths)` are called after a change with the paths it may affect (None: all).
    """

    def __init__(self) -> None:
        self._per_file: dict[str, Spacing] = {}
        self._all_files_mm: float | None = None
        self._csv: PixelCsv | None = None
        self.policy = SpacingPolicy()
        self.listeners: list[Callable[[set[str] | None], None]] = []

    # Reading -----------------------------------------------------------------------------------
    def override(self, path: str | Path) -> Spacing | None:
        """The window's choice for `path` (file > all files > CSV), or None to keep its own."""
        return self.policy.override_for(path)

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
        self.policy.set_for_file(path, spacing)  # ValueError for an implausible size
        if spacing is None:
            self._per_file.pop(str(path), None)
        else:
            self._per_file[str(path)] = spacing
        self._changed({str(path)})

    def set_for_all_files(self, mm: float | None) -> None:
        """One size for every file; ValueError (saying the plausible range) when implausible."""
        self.policy.set_given(mm)
        self._all_files_mm = mm
        self._changed(None)

    def load_csv(self, path: str | Path, for_files: Iterable[str | Path] = ()) -> int:
        """Read an HC18-style `filename,pixel size(mm)` CSV for the files of its own folder tree
        and the folders of `for_files`; returns the number of sizes. Raises OSError or
        ValueError (naming the file) when it cannot be read; the previous CSV then stays."""
        table = read_pixel_table(path)
        folders = {str(_folder(path))} | {str(_folder(f)) for f in for_files}
        self._csv = PixelCsv(str(Path(path).absolute()), dict(table), tuple(sorted(folders)))
        self._use_table(table, self._csv.folders)
        self._changed(None)
        return len(table)

    def _use_table(self, table: PixelSizeTable, folders: Iterable[str]) -> None:
        self.policy.clear_tables()
        self.policy.add_table(table, applies_to=folders)

    def forget_csv(self) -> None:
        self._csv = None
        self.policy.clear_tables()
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
        policy = SpacingPolicy(None if all_mm is None else float(all_mm))
        for path, spacing in per_file.items():
            policy.set_for_file(path, spacing)
        self.policy = policy
        if pixel_csv is not None:
            table = PixelSizeTable.from_mapping(pixel_csv.sizes)
            table.path = Path(pixel_csv.path)  # provenance names the CSV the user loaded
            self._use_table(table, pixel_csv.folders)
        self._per_file = per_file
        self._all_files_mm = None if all_mm is None else float(all_mm)
        self._csv = pixel_csv
        self._changed(None)


def spacing_json(spacing: Spacing) -> dict:
    return {
        "row_mm": spacing.row_mm,
        "col_mm": spacing.col_mm,
        "source": spacing.source,
        "detail": spacing.detail,
    }


def spacing_from_json(data: dict) -> Spacing:
    detail = str(data.get("detail", ""))  # sessions saved before provenance have none
    return Spacing(float(data["row_mm"]), float(data["col_mm"]), str(data["source"]), detail)
