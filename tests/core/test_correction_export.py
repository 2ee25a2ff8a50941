"""Accepted frames exported as a labelled folder that the importer (and `train`) reads back."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.correction_export import export_accepted
from hc_studio.core.dataset import import_labelled_folder
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.phantom import make_phantom
from hc_studio.core.records import MeasurementRecord
from hc_studio.core.spacing import Spacing


def frame_file(folder: Path, name: str, seed: int) -> tuple[Path, Ellipse]:
    phantom = make_phantom((120, 160), seed=seed)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.round(phantom.image * 255).astype(np.uint8))
    return path, phantom.ellipse_px


def record(path: Path, ellipse, accepted, spacing=None, origin="auto") -> MeasurementRecord:
    return MeasurementRecord(
        file=str(path),
        frame_index=0,
        spacing=spacing or Spacing.square(0.15),
        ellipse_px=ellipse,
        origin=origin,
        accepted=accepted,
    )


def same_ellipse(a: Ellipse, b: Ellipse, tolerance: float) -> bool:
    angle = abs((a.angle - b.angle + math.pi / 2) % math.pi - math.pi / 2)
    near = all(abs(getattr(a, k) - getattr(b, k)) < tolerance for k in ("cx", "cy", "a", "b"))
    return near and (angle < 0.02 or abs(a.a - a.b) < 1.0)


def test_accepted_frames_read_back_with_the_same_ellipses(tmp_path: Path) -> None:
    first, ellipse_1 = frame_file(tmp_path / "exam", "a.png", 1)
    second, ellipse_2 = frame_file(tmp_path / "exam", "b.png", 2)
    edited = Ellipse(ellipse_2.cx + 3.3, ellipse_2.cy - 1.7, ellipse_2.a * 0.95, ellipse_2.b, 0.7)
    third, ellipse_3 = frame_file(tmp_path / "exam", "c.png", 3)
    records = [
        record(first, ellipse_1, True),
        record(second, edited, True, origin="edited"),
        record(third, ellipse_3, False),  # rejected in review: not exported
        record(third, None, True),  # accepted "no head": nothing to learn an ellipse from
    ]
    out = tmp_path / "learned"
    export = export_accepted(records, out)
    assert export.names == ["a.png", "b.png"]
    assert export.skipped == [("c.png frame 0", "accepted without an ellipse")]
    imported = import_labelled_folder(out)
    assert imported.problems == [] and imported.layout == "images-masks"
    by_name = {p.image_path.name: p for p in imported.pairs}
    assert same_ellipse(by_name["a.png"].ellipse_px, ellipse_1, 0.5)
    assert same_ellipse(by_name["b.png"].ellipse_px, edited, 0.5)
    assert by_name["a.png"].spacing.col_mm == pytest.approx(0.15)  # the pixel CSV is found
    assert by_name["a.png"].patient == "a"
    sources = (out / "sources.csv").read_text().splitlines()
    assert sources[2].endswith(",0,edited")


def test_an_existing_folder_is_never_written_into(tmp_path: Path) -> None:
    path, ellipse = frame_file(tmp_path, "a.png", 1)
    out = tmp_path / "learned"
    (out / "images").mkdir(parents=True)
    (out / "images" / "keep.png").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="not empty"):
        export_accepted([record(path, ellipse, True)], out)
    assert (out / "images" / "keep.png").read_bytes() == b"old"


def test_nothing_accepted_leaves_nothing_behind(tmp_path: Path) -> None:
    path, ellipse = frame_file(tmp_path, "a.png", 1)
    with pytest.raises(ValueError, match="no accepted frame"):
        export_accepted([record(path, ellipse, None)], tmp_path / "learned")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_uncalibrated_frames_get_no_pixel_size(tmp_path: Path) -> None:
    path, ellipse = frame_file(tmp_path, "a.png", 1)
    export_accepted([record(path, ellipse, True, Spacing.uncalibrated())], tmp_path / "out")
    assert not (tmp_path / "out" / "pixel_size.csv").exists()
    assert not import_labelled_folder(tmp_path / "out").pairs[0].spacing.calibrated
