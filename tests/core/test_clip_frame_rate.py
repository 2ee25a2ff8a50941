"""The frame rate a clip plays at: a DICOM cine's Frame Time, a video's own rate, else 25 fps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.cine import DEFAULT_FPS, clip_frame_rate
from hc_studio.core.io import count_frames, read_frame
from hc_studio.core.phantom_dicom import write_cine_dicom


def test_a_dicom_cine_plays_at_its_frame_time(tmp_path: Path) -> None:
    frames = np.stack([np.full((30, 40), 10 * i, np.uint8) for i in range(3)])
    path = write_cine_dicom(tmp_path / "clip.dcm", frames, 12.5, pixel_mm=0.2)
    rate = clip_frame_rate(path)
    assert (rate.fps, rate.source) == (pytest.approx(12.5), "FrameTime")
    assert count_frames(path) == 3
    frame = read_frame(path, 2)
    assert frame.spacing.row_mm == pytest.approx(0.2)
    assert frame.pixels[0, 0] == pytest.approx(20 / 255, abs=1e-6)


def test_a_video_plays_at_its_container_rate(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (40, 30), False)
    for value in (0, 100, 200):
        writer.write(np.full((30, 40), value, np.uint8))
    writer.release()
    rate = clip_frame_rate(path)
    assert (rate.fps, rate.source) == (pytest.approx(10.0), "video container")


def test_a_still_or_a_missing_file_gets_the_default(tmp_path: Path) -> None:
    assert clip_frame_rate(tmp_path / "gone.png").fps == DEFAULT_FPS
    missing = clip_frame_rate(tmp_path / "gone.dcm")
    assert missing.fps == DEFAULT_FPS and missing.source == "default"


def test_a_cine_needs_two_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        write_cine_dicom(tmp_path / "one.dcm", np.zeros((1, 8, 8), np.uint8), 10)
