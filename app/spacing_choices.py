"""The pixel-size choices made in the window, and which one applies to a file."""

from __future__ import annotations

from pathlib import Path

from ..core.spacing import Spacing, lookup_csv_size, read_pixel_csv


class SpacingChoices:
    """Per-file spacings (calibration or a typed size), one typed size for all files, and a
    pixel-size CSV. `override(path)` gives the one that applies, or None to keep the file's
    own spacing (DICOM) or leave it uncalibrated."""

    def __init__(self) -> None:
        self._per_file: dict[str, Spacing] = {}
        self._all_files_mm: float | None = None
        self._csv_sizes: dict[str, float] = {}

    def override(self, path: str | Path) -> Spacing | None:
        """Most explicit first: this file's choice > the size for all files > the CSV."""
        path = str(path)
        if path in self._per_file:
            return self._per_file[path]
        if self._all_files_mm is not None:
            return Spacing.square(self._all_files_mm, "user")
        csv_mm = lookup_csv_size(self._csv_sizes, path)
        return Spacing.square(csv_mm, "csv") if csv_mm is not None else None

    def set_for_file(self, path: str | Path, spacing: Spacing | None) -> None:
        """A calibration or typed size for one file; None forgets it."""
        if spacing is None:
            self._per_file.pop(str(path), None)
        else:
            self._per_file[str(path)] = spacing

    def set_for_all_files(self, mm: float | None) -> None:
        self._all_files_mm = mm

    def load_csv(self, path: str | Path) -> int:
        """Read an HC18-style `filename,pixel size(mm)` CSV; returns the number of sizes.
        Raises OSError or ValueError (naming the file) when it cannot be read."""
        self._csv_sizes = read_pixel_csv(path)
        return len(self._csv_sizes)
