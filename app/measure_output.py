"""The Measure tab's outputs: accepted records to CSV or an HC18 submission, the view as PNG,
the values on the clipboard.

A mixin of `MeasureTab`: it uses the tab's `session`, `view`, `settings` and message signals.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication, QFileDialog

from ..core.export import write_hc18_submission, write_records_csv
from ..core.records import MeasurementRecord
from .formatting import values_text
from .image_view import write_png


class MeasureOutputs:
    """Exports of the accepted frames; each export marks the decisions as written."""

    def accepted_records(self) -> list[MeasurementRecord]:
        return self.session.accepted_records()

    def _ask_save_path(self, title: str, name: str, filters: str) -> str | None:
        folder = Path(self.settings.last_folder("export"))
        path, _ = QFileDialog.getSaveFileName(self, title, str(folder / name), filters)
        if path:
            self.settings.set_last_folder("export", path)
        return path or None

    def _export_accepted(self, title: str, default_name: str, path, write):
        """Write the accepted records with `write(records, path)`; (records, result) or None
        when there is nothing to write, no file was chosen, or writing failed (said in the
        window)."""
        records = self.accepted_records()
        if not records:
            self.errorMessage.emit("No accepted frame yet: accept frames with Enter or A first.")
            return None
        path = path or self._ask_save_path(title, default_name, "CSV (*.csv)")
        if not path:
            return None
        try:
            result = write(records, path)
        except OSError as error:
            self.errorMessage.emit(f"Could not write {Path(path).name}: {error.strerror or error}")
            return None
        self.session.mark_exported()
        return records, Path(path), result

    def export_accepted_csv(self, path: str | Path | None = None) -> int:
        done = self._export_accepted(
            "Export accepted", "hc_measurements.csv", path, write_records_csv
        )
        if done is None:
            return 0
        _, path, count = done
        self.statusMessage.emit(f"{count} accepted record(s) written to {path.name}")
        return count

    def export_hc18(self, path: str | Path | None = None) -> int:
        done = self._export_accepted(
            "HC18 submission", "submission.csv", path, write_hc18_submission
        )
        if done is None:
            return 0
        records, path, skipped = done
        written = len(records) - len(skipped)
        message = f"{written} frame(s) written to {path.name}"
        if skipped:
            message += "; left out: " + "; ".join(f"{Path(f).name} ({r})" for f, r in skipped)
        self.statusMessage.emit(message)
        return written

    def copy_values(self) -> None:
        record = self.current_record()
        if record is None:
            return
        QApplication.clipboard().setText(values_text(record))
        self.statusMessage.emit("Values copied to the clipboard")

    def save_view_png(self, path: str | Path | None = None) -> bool:
        if self.view.pixels() is None:
            self.errorMessage.emit("No frame on screen.")
            return False
        if path is None:
            stem = Path(self._current[0]).stem if self._current else "frame"
            path = self._ask_save_path("Save view", f"{stem}_hc.png", "PNG (*.png)")
        if not path:
            return False
        try:
            write_png(self.view.grab_image(), path)
        except OSError as error:
            self.errorMessage.emit(f"Could not write {Path(path).name}: {error.strerror or error}")
            return False
        self.statusMessage.emit(f"View saved to {Path(path).name}")
        return True
