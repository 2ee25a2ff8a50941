"""The frame type every reader returns, and the error every reader raises."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..spacing_value import Spacing


@dataclass(frozen=True)
class Frame:
    """One grey frame of a still image, a DICOM file or a video.

    `pixels` is (H, W) float32 in 0..1; `index` is the frame's position within its file (0 for
    stills) and `n_frames` the file's frame count; `spacing` is the file's own pixel spacing
    (`Spacing.uncalibrated()` when it has none) unless the caller overrode it.
    """

    pixels: np.ndarray
    path: str
    index: int
    n_frames: int
    spacing: Spacing


class FrameReadError(Exception):
    """A file could not be read as frames; str() is '<file name>: <problem>'."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}")
