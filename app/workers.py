"""Background work for the window: frame loading and inference never run on the UI thread.

Results come back as Qt signals (queued to the UI thread). Work is serialised on one worker
thread because one onnxruntime session already uses every core; only the newest request is run
when the user skims frames faster than they are measured (older ones report `skipped`).
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..core.io import FrameReadError, count_frames, find_frame_files, read_frame
from ..core.session import FrameKey, ListedFile
from ..core.spacing import Spacing

__all__ = ["EngineHolder", "FileLister", "FrameKey", "InferenceService", "ListedFile"]


def describe_error(error: BaseException) -> str:
    """A one-line message for the user (no traceback): the error's own text, or its type."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text or type(error).__name__


class EngineHolder:
    """Loads the segmentation model once, on the worker thread, and keeps it.

    `engine()` returns the loaded engine or raises ValueError / FileNotFoundError with a
    message for the user; None means no model is configured.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model_path: Path | None = None
        self._device = "auto"
        self._engine = None
        self._error: str | None = None

    def configure(self, model_path: str | Path | None, device: str = "auto") -> None:
        with self._lock:
            self._model_path = Path(model_path) if model_path else None
            self._device = device
            self._engine = None
            self._error = None

    @property
    def model_path(self) -> Path | None:
        return self._model_path

    @property
    def provider(self) -> str | None:
        """What the loaded model runs on ("CPUExecutionProvider", ...), None before loading."""
        engine = self._engine
        return engine.provider if engine is not None else None

    def engine(self):
        with self._lock:
            if self._engine is not None or self._model_path is None:
                return self._engine
            if self._error is not None:
                raise ValueError(self._error)
            from ..core.inference import SegmentationEngine

            try:
                self._engine = SegmentationEngine(self._model_path, self._device)
            except (OSError, ValueError) as error:
                self._error = describe_error(error)
                raise ValueError(self._error) from None
            return self._engine


class _FrameJobSignals(QObject):
    frameLoaded = Signal(object, object)  # (key, Frame)
    measured = Signal(object, object)  # (key, MeasuredFrame)
    failed = Signal(object, str)  # (key, message): the frame could not be read
    measureFailed = Signal(object, str)  # (key, message): read but not measured
    skipped = Signal(object)  # key: a newer request superseded this one


class _FrameJob(QRunnable):
    def __init__(
        self,
        service: InferenceService,
        key: FrameKey,
        spacing: Spacing | None,
        measure: bool,
        generation: int,
    ) -> None:
        super().__init__()
        self._service = service
        self._key = key
        self._spacing = spacing
        self._measure = measure
        self._generation = generation

    def run(self) -> None:
        signals = self._service.signals
        if self._generation != self._service.generation:
            signals.skipped.emit(self._key)
            return
        path, index = self._key
        try:
            frame = read_frame(path, index, spacing_override=self._spacing)
        except FrameReadError as error:
            signals.failed.emit(self._key, str(error))
            return
        except Exception as error:  # an unexpected decoder failure must not kill the thread
            signals.failed.emit(self._key, f"{Path(path).name}: {describe_error(error)}")
            return
        signals.frameLoaded.emit(self._key, frame)
        if self._measure:
            self._run_measure(frame)

    def _run_measure(self, frame) -> None:
        signals = self._service.signals
        try:
            engine = self._service.engines.engine()
            if engine is None:
                signals.measureFailed.emit(self._key, "no model: choose one in the Model menu")
                return
            from ..core.measure import measure_frame

            result = measure_frame(frame, engine)
            _ = result.quality  # worked out here, off the UI thread (the clip ranking reads it)
        except Exception as error:  # shown in the window, never only in a terminal
            traceback.print_exc()
            signals.measureFailed.emit(self._key, describe_error(error))
            return
        signals.measured.emit(self._key, result)


class InferenceService(QObject):
    """Loads and measures frames on one background thread; results arrive as `signals`."""

    def __init__(self, engines: EngineHolder | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.signals = _FrameJobSignals(self)
        self.engines = engines if engines is not None else EngineHolder()
        self.generation = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def configure_model(self, model_path: str | Path | None, device: str = "auto") -> None:
        self.engines.configure(model_path, device)

    def request(self, key: FrameKey, spacing: Spacing | None, measure: bool) -> None:
        """Load frame `key` (and measure it when `measure`), superseding older requests."""
        self.generation += 1
        self._pool.start(_FrameJob(self, key, spacing, measure, self.generation))

    def wait(self, msecs: int = 30000) -> bool:
        return self._pool.waitForDone(msecs)


class _ListSignals(QObject):
    listed = Signal(list)  # list[ListedFile]
    failed = Signal(str)


class _ListJob(QRunnable):
    def __init__(self, paths: list[str], signals: _ListSignals) -> None:
        super().__init__()
        self._paths = paths
        self._signals = signals

    def run(self) -> None:
        try:
            files = find_frame_files(self._paths)
        except OSError as error:
            self._signals.failed.emit(describe_error(error))
            return
        listed = []
        for path in files:
            try:
                listed.append(ListedFile(str(path), max(1, count_frames(path))))
            except FrameReadError as error:
                listed.append(ListedFile(str(path), 1, str(error)))
            except Exception as error:  # keep listing the others
                listed.append(ListedFile(str(path), 1, f"{path.name}: {describe_error(error)}"))
        self._signals.listed.emit(listed)


class FileLister(QObject):
    """Expands folders and counts frames per file in the background."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.signals = _ListSignals(self)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def list_paths(self, paths: list[str]) -> None:
        self._pool.start(_ListJob(list(paths), self.signals))

    def wait(self, msecs: int = 30000) -> bool:
        return self._pool.waitForDone(msecs)
