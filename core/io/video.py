"""Video cine loops (.avi, .mp4, .mov, .wmv, .mkv) read frame by frame with cv2.VideoCapture.

Video containers carry no pixel spacing: frames are uncalibrated unless the caller overrides.
The container's frame-count field is often wrong (variable frame rate, damaged index), so the
count is established by reading the stream once; it is cached per file, size and mtime.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .frame import FrameReadError
from .images import check_frame_size, to_grey_float

VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".wmv", ".mkv")


@contextlib.contextmanager
def _open(path: Path) -> Iterator[cv2.VideoCapture]:
    if not path.is_file():
        raise FrameReadError(path, "file not found")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise FrameReadError(path, "not a readable video (unknown codec or damaged file)")
        # The container's frame size, known before any frame is decoded.
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        check_frame_size(path, height, width)
        yield capture
    finally:
        capture.release()


@functools.lru_cache(maxsize=64)
def _count(path: Path, size: int, mtime_ns: int) -> int:
    with _open(path) as capture:
        n_frames = 0
        while capture.grab():
            n_frames += 1
    if n_frames == 0:
        raise FrameReadError(path, "video holds no readable frame")
    return n_frames


def count_video_frames(path: str | Path) -> int:
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FrameReadError(path, "file not found") from None
    return _count(path, stat.st_size, stat.st_mtime_ns)


def iter_video_frames(path: str | Path) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (index, n_frames, pixels (H, W) float32 0..1) for every frame, in order."""
    path = Path(path)
    n_frames = count_video_frames(path)
    with _open(path) as capture:
        for index in range(n_frames):
            ok, image = capture.read()
            if not ok:
                raise FrameReadError(path, f"frame {index} of {n_frames} cannot be decoded")
            yield index, n_frames, to_grey_float(image)


def read_video_frame(path: str | Path, index: int) -> tuple[int, np.ndarray]:
    """(n_frames, pixels (H, W) float32 0..1) of frame `index`.

    Seeks with CAP_PROP_POS_FRAMES, then checks the position it landed on; where the container
    does not seek exactly, the stream is read from the start up to the frame.
    """
    path = Path(path)
    n_frames = count_video_frames(path)
    if not 0 <= index < n_frames:
        raise FrameReadError(path, f"has {n_frames} frame(s), no frame {index}")
    if index > 0:
        with _open(path) as capture:
            if capture.set(cv2.CAP_PROP_POS_FRAMES, index) and (
                int(capture.get(cv2.CAP_PROP_POS_FRAMES)) == index
            ):
                ok, image = capture.read()
                if ok:
                    return n_frames, to_grey_float(image)
    with _open(path) as capture:  # a fresh stream: an inexact seek leaves no reliable position
        for _ in range(index):
            if not capture.grab():
                raise FrameReadError(path, f"frame {index} of {n_frames} cannot be decoded")
        ok, image = capture.read()
    if not ok:
        raise FrameReadError(path, f"frame {index} of {n_frames} cannot be decoded")
    return n_frames, to_grey_float(image)
