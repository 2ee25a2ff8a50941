"""The benchmark scripts live in benchmarks/ (not a package): put that folder on sys.path, as
running `python benchmarks/<script>.py` does."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS_DIR) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS_DIR))

from hc_studio.core.dataset import import_labelled_folder  # noqa: E402
from hc_studio.core.phantom import make_phantom  # noqa: E402


@pytest.fixture
def labelled_phantoms() -> Callable[..., list]:
    """Write phantom frames with their outlines and a pixel-size CSV in the HC18 layout into a
    folder; returns the folder's labelled pairs (`core.dataset.import_labelled_folder`)."""

    def write(
        folder: Path, count: int = 4, shape: tuple[int, int] = (270, 400), pixel_mm: float = 0.3
    ) -> list:
        for seed in range(count):
            phantom = make_phantom(shape, seed=seed)
            for name, image in (
                (f"00{seed}_HC.png", phantom.image),
                (f"00{seed}_HC_Annotation.png", phantom.outline),
            ):
                pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
                cv2.imwrite(str(folder / name), pixels)
        (folder / "pixel_size.csv").write_text(
            "filename,pixel size(mm)\n"
            + "".join(f"00{seed}_HC.png,{pixel_mm}\n" for seed in range(count))
        )
        return import_labelled_folder(folder, None, None, False).pairs

    return write
