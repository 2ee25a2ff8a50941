"""Cine playback without Qt: the clip's frame rate, a play/pause/step/loop state advanced by
elapsed time, and a per-frame measurement cache. A view drives it with a timer:

    player = CinePlayer(n_frames, cine_frame_rate(dataset).fps)
    timer.setInterval(player.tick_ms)             # e.g. a QTimer
    on timeout:  if player.advance(seconds since the last call): show(player.index)

Advancing by measured elapsed time (not by ticks) keeps the clip at its recorded speed when the
timer fires late; frames that fell behind are skipped, not queued.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

DEFAULT_FPS = 25.0
FPS_RANGE = (0.1, 1000.0)  # outside: the header value is not a playback rate

T = TypeVar("T")


@dataclass(frozen=True)
class FrameRate:
    """Frames per second and where the number came from (a DICOM keyword, or "default")."""

    fps: float
    source: str
    notes: tuple[str, ...] = ()


def _positive(value) -> float | None:
    try:
        number = float(value if not isinstance(value, list | tuple) else value[0])
    except (TypeError, ValueError, IndexError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def cine_frame_rate(dataset) -> FrameRate:
    """The recorded frame rate of a DICOM cine (a pydicom Dataset or a file path).

    FrameTime (0018,1063, ms between frames: the acquisition rate), else CineRate (0018,0040),
    else RecommendedDisplayFrameRate (0008,2144), else DEFAULT_FPS. A value giving a rate
    outside FPS_RANGE is passed over and noted.
    """
    if isinstance(dataset, str | Path):
        import pydicom

        dataset = pydicom.dcmread(dataset, stop_before_pixels=True, force=True)
    notes = []
    candidates = (
        ("FrameTime", lambda ms: 1000.0 / ms),
        ("CineRate", lambda fps: fps),
        ("RecommendedDisplayFrameRate", lambda fps: fps),
    )
    for keyword, to_fps in candidates:
        raw = dataset.get(keyword)
        if raw is None or raw == "":
            continue
        value = _positive(raw)
        fps = None if value is None else to_fps(value)
        if fps is not None and FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            return FrameRate(fps, keyword, tuple(notes))
        notes.append(f"{keyword} {raw!r} is not a usable frame rate")
    return FrameRate(DEFAULT_FPS, "default", tuple(notes))


class CinePlayer:
    """Play, pause, step and loop over `n_frames` frames at `fps` (times `speed`)."""

    def __init__(self, n_frames: int, fps: float, *, loop: bool = True, speed: float = 1.0):
        if n_frames < 1:
            raise ValueError(f"a cine needs at least one frame, got {n_frames}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"frame rate must be a positive number, got {fps}")
        self.n_frames = n_frames
        self.fps = float(fps)
        self.loop = loop
        self.speed = speed
        self.index = 0
        self.playing = False
        self._pending = 0.0  # seconds accumulated towards the next frame

    @property
    def tick_ms(self) -> int:
        """A timer interval (ms) that shows every frame: one frame's time, at least 1 ms."""
        return max(1, int(1000.0 / (self.fps * self.speed)))

    def play(self) -> None:
        if self.n_frames == 1:
            return
        if not self.loop and self.index == self.n_frames - 1:
            self.index = 0  # play again from the start, as players do
        self.playing, self._pending = True, 0.0

    def pause(self) -> None:
        self.playing, self._pending = False, 0.0

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def seek(self, index: int) -> int:
        """Show frame `index` (clamped to the clip); playback state is kept."""
        self.index = min(max(int(index), 0), self.n_frames - 1)
        self._pending = 0.0
        return self.index

    def step(self, delta: int = 1) -> int:
        """Pause and move `delta` frames (wrapping when looping, else clamped)."""
        self.pause()
        target = self.index + delta
        if self.loop:
            target %= self.n_frames
        return self.seek(target)

    def advance(self, elapsed_s: float) -> bool:
        """Let `elapsed_s` seconds of playback pass; True when the shown frame changed."""
        if not self.playing or elapsed_s <= 0:
            return False
        self._pending += elapsed_s * self.fps * self.speed
        frames = int(self._pending)
        if frames == 0:
            return False
        self._pending -= frames
        target = self.index + frames
        if target >= self.n_frames:
            if self.loop:
                target %= self.n_frames
            else:
                target = self.n_frames - 1
                self.pause()
        changed = target != self.index
        self.index = target
        return changed


class FrameCache(Generic[T]):
    """Per-frame results (e.g. MeasurementRecords) of one clip under one context.

    The context says what the results depend on (model, spacing...); setting a different one
    empties the cache, so a result made under other settings is never shown.
    """

    def __init__(self, n_frames: int, context: object = None) -> None:
        self.n_frames = n_frames
        self._context = context
        self._items: dict[int, T] = {}

    @property
    def context(self) -> object:
        return self._context

    def set_context(self, context: object) -> None:
        if context != self._context:
            self._context = context
            self._items.clear()

    def _check(self, index: int) -> None:
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside the clip (0-{self.n_frames - 1})")

    def get(self, index: int) -> T | None:
        self._check(index)
        return self._items.get(index)

    def put(self, index: int, value: T) -> None:
        self._check(index)
        self._items[index] = value

    def invalidate(self, index: int | None = None) -> None:
        """Forget one frame's result (an edit), or all of them."""
        if index is None:
            self._items.clear()
        else:
            self._items.pop(index, None)

    def missing(self, indices: Iterable[int] | None = None) -> list[int]:
        """Frames (of `indices`, default all) without a result, in order: what to measure."""
        wanted = range(self.n_frames) if indices is None else indices
        return [i for i in wanted if i not in self._items]

    def __len__(self) -> int:
        return len(self._items)


def clip_frame_rate(path: str | Path) -> FrameRate:
    """The recorded frame rate of a multi-frame file: a DICOM cine's header (`cine_frame_rate`),
    a video container's rate, else DEFAULT_FPS with a note saying why."""
    from .io import FrameReadError, frame_file_kind

    path = Path(path)
    try:
        kind = frame_file_kind(path)
    except FrameReadError as error:
        return FrameRate(DEFAULT_FPS, "default", (str(error),))
    if kind == "dicom":
        try:
            return cine_frame_rate(path)
        except Exception as error:  # noqa: BLE001 (an unreadable header: play at the default)
            return FrameRate(DEFAULT_FPS, "default", (f"{path.name}: header not read ({error})",))
    if kind == "video":
        import cv2

        capture = cv2.VideoCapture(str(path))
        try:
            fps = _positive(capture.get(cv2.CAP_PROP_FPS)) if capture.isOpened() else None
        finally:
            capture.release()
        if fps is not None and FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            return FrameRate(fps, "video container")
        return FrameRate(DEFAULT_FPS, "default", (f"{path.name}: the video has no frame rate",))
    return FrameRate(DEFAULT_FPS, "default")
