"""Video cine loops: frame count, every frame addressable by index."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.io import FrameReadError, count_frames, load_frames, read_frame
from hc_studio.core.spacing import Spacing

N_FRAMES = 12
LEVELS = [int(10 + 20 * i) for i in range(N_FRAMES)]  # each frame has its own brightness


@pytest.fixture(scope="module", params=[("cine.avi", "MJPG"), ("cine.mp4", "mp4v")])
def cine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    name, codec = request.param
    path = tmp_path_factory.mktemp("video") / name
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10, (64, 48))
    assert writer.isOpened()
    for level in LEVELS:
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    return path


def test_count_frames(cine: Path) -> None:
    assert count_frames(cine) == N_FRAMES


def test_load_frames_yields_every_frame_in_order(cine: Path) -> None:
    frames = list(load_frames(cine))
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert all(f.n_frames == N_FRAMES and f.pixels.shape == (48, 64) for f in frames)
    means = [float(f.pixels.mean()) * 255 for f in frames]
    np.testing.assert_allclose(means, LEVELS, atol=3)
    assert frames[0].spacing == Spacing.uncalibrated()


@pytest.mark.parametrize("index", [0, 5, N_FRAMES - 1])
def test_read_frame_by_index(cine: Path, index: int) -> None:
    frame = read_frame(cine, index)
    assert frame.index == index
    assert float(frame.pixels.mean()) * 255 == pytest.approx(LEVELS[index], abs=3)


def test_index_past_the_end_is_an_error(cine: Path) -> None:
    with pytest.raises(
        FrameReadError, match=rf"^{cine.name}: has {N_FRAMES} frame\(s\), no frame 99"
    ):
        read_frame(cine, 99)


def test_file_that_is_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 100)
    with pytest.raises(FrameReadError, match=r"^fake\.mp4: "):
        count_frames(fake)


def test_video_frames_over_the_size_limit_are_refused_before_decoding(
    cine: Path, monkeypatch
) -> None:
    from hc_studio.core.io import images

    monkeypatch.setattr(images, "MAX_FRAME_SIDE", 32)  # the cine is 64x48
    with pytest.raises(FrameReadError, match=rf"^{cine.name}: frame of 64x48 pixels is larger"):
        list(load_frames(cine))
