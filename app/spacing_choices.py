"""The pixel-size choices made in the window, over the one `core.spacing.SpacingPolicy`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..core.spacing import Spacing, SpacingPolicy, read_pixel_table


class SpacingChoices:
    """Per-file spacings (calibration or a typed size), one typed size for all files, and a
    pixel-size CSV, held in a `SpacingPolicy` (which decides their order).

    `override(path)` gives the one that applies, or None to keep the file's own spacing
    (DICOM) or leave it uncalibrated. Setting an implausible size raises ValueError.
    """

    def __init__(self, policy: SpacingPolicy | None = None) -> None:
        self.policy = policy or SpacingPolicy()

    def override(self, path: str | Path) -> Spacing | None:
        return self.policy.override_for(path)

    def set_for_file(self, path: str | Path, spacing: Spacing | None) -> None:
        """A calibration or typed size for one file; None forgets it."""
        self.policy.set_for_file(path, spacing)

    def set_for_all_files(self, mm: float | None) -> None:
        self.policy.set_given(mm)

    def load_csv(self, path: str | Path, applies_to: Iterable[str | Path] = ()) -> int:
        """Read a pixel-size CSV (replacing the previous one) for the files in its own folder
        and `applies_to` (the files or folders open when it was loaded); returns the number of
        sizes. Raises OSError or ValueError (naming the file) when it cannot be read."""
        table = read_pixel_table(path)
        self.policy.clear_tables()
        self.policy.add_table(table, applies_to)
        return len(table)
