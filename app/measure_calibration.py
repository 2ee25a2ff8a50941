"""The Measure tab's pixel-size and two-point calibration commands (dialogs over the session).

A mixin of `MeasureTab`: it uses the tab's `session`, `view`, `settings`, current frame and
message signals.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog

from ..core.spacing import Spacing


class CalibrationCommands:
    """Pixel size for one file or all, pixel-size CSV, two-point calibration."""

    def set_pixel_size(self, mm: float | None, all_files: bool = False) -> None:
        """A typed pixel size (mm) for the current file, or for every file (`all_files`)."""
        try:
            if all_files:
                self.session.set_pixel_size(mm)
            elif self._current is not None:
                self.session.set_pixel_size(mm, self._current[0])
        except ValueError as error:  # an implausible size is refused with its reason
            self.errorMessage.emit(f"Pixel size: {error}")

    def set_pixel_csv(self, path: str | Path) -> None:
        try:
            count = self.session.load_pixel_csv(path)
        except (OSError, ValueError) as error:
            self.errorMessage.emit(str(error))
            return
        self.statusMessage.emit(
            f"{count} pixel sizes read from {Path(path).name}, for the files of its folder and "
            "the open files"
        )

    def apply_calibration(
        self, p1_xy: tuple[float, float], p2_xy: tuple[float, float], distance_mm: float
    ) -> Spacing | None:
        """Calibrate the current file from two points (on the image) `distance_mm` apart."""
        pixels = self.view.pixels()
        if self._current is None or pixels is None:
            return None
        try:
            spacing = self.session.calibrate(
                self._current, p1_xy, p2_xy, distance_mm, pixels.shape[:2]
            )
        except ValueError as error:
            self.errorMessage.emit(f"Calibration: {error}")
            return None
        name = Path(self._current[0]).name
        self.statusMessage.emit(f"Calibrated {name}: {spacing.col_mm:.4f} mm/px")
        return spacing

    def start_calibration(self) -> None:
        if self._current is None or self.view.pixels() is None:
            self.errorMessage.emit("Open a frame first.")
            return
        self.view.start_picking(2)
        self.statusMessage.emit(
            "Calibration: click both ends of a known distance (e.g. 1 cm on the depth scale)."
        )

    def _on_calibration_points(self, points: list) -> None:
        distance, ok = QInputDialog.getDouble(
            self, "Calibrate", "Distance between the two points (mm):", 10.0, 0.01, 1000.0, 2
        )
        self.view.cancel_picking()
        if ok:
            self.apply_calibration(points[0], points[1], distance)

    def ask_pixel_size(self) -> None:
        self._ask_pixel_size(all_files=False)

    def ask_pixel_size_all(self) -> None:
        self._ask_pixel_size(all_files=True)

    def _ask_pixel_size(self, all_files: bool) -> None:
        if self._current is None and not all_files:
            self.errorMessage.emit("Open a frame first.")
            return
        current = self.spacing_for(self._current) if self._current else None
        start = current.col_mm if current is not None and current.calibrated else 0.15
        what = "every open file" if all_files else Path(self._current[0]).name
        mm, ok = QInputDialog.getDouble(
            self, "Pixel size", f"Pixel size for {what} (mm per pixel):", start, 0.001, 10.0, 4
        )
        if ok:
            self.set_pixel_size(mm, all_files)

    def choose_pixel_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Pixel-size CSV (filename,pixel size(mm))",
            self.settings.last_folder("open"),
            "CSV (*.csv)",
        )
        if path:
            self.set_pixel_csv(path)

    def cancel_calibration(self) -> None:
        if self.view.is_picking():
            self.view.cancel_picking()
            self.statusMessage.emit("Calibration cancelled")
