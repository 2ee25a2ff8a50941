"""Keeps the measuring session on disk while the window is open (Qt side of `autosave`).

Changes are written shortly after they happen (one atomic JSON write per burst of changes), so a
crash loses at most the last half second. A session saved with frames is offered back at start;
until that question is answered nothing is written, so the saved frames cannot be overwritten by
the empty new session.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from ..core.session import MeasureSession
from ..core.session.autosave import read_saved_session, save_session, saved_frame_count

SAVE_DELAY_MS = 500


class SessionKeeper(QObject):
    """Saves `session` into `folder` as it changes; `problem(message)` when it cannot."""

    problem = Signal(str)

    def __init__(self, session: MeasureSession, folder: str | Path, parent: QObject) -> None:
        super().__init__(parent)
        self.session = session
        self.folder = Path(folder)
        self.pending: dict | None = None  # saved frames not yet offered back
        self._failed = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_DELAY_MS)
        self._timer.timeout.connect(self.save_now)
        session.listeners.append(self._timer.start)

    def load(self) -> None:
        """Restore the remembered calibration; keep saved frames for `offer_back`."""
        data, problem = read_saved_session(self.folder)
        if problem:
            self.problem.emit(problem)
        if data is None:
            return
        self.session.restore(data, with_frames=False)
        if saved_frame_count(data)[0] or data.get("files"):
            self.pending = data

    def pending_summary(self) -> tuple[int, int, int]:
        """(files, frames measured, frames decided) of the session waiting to be offered."""
        data = self.pending or {}
        measured, decided = saved_frame_count(data) if data else (0, 0)
        return len(data.get("files", [])), measured, decided

    def resolve(self, restore: bool) -> None:
        """The person answered: put the saved frames back, or start without them."""
        data, self.pending = self.pending, None
        if restore and data is not None:
            # The calibration was restored at start and may have changed since (--pixel-size):
            # the newer one stays, and frames whose numbers it changes lose their decision.
            calibration = self.session.calibration.to_json()
            self.session.restore(data)
            self.session.calibration.restore(calibration)
        self.save_now()

    def save_now(self, with_frames: bool = True) -> bool:
        """Write the session now (unless saved frames still wait for an answer)."""
        self._timer.stop()
        if self.pending is not None:
            return False
        try:
            save_session(self.folder, self.session, with_frames=with_frames)
        except (OSError, ValueError) as error:
            if not self._failed:  # said once, not at every change
                detail = getattr(error, "strerror", None) or error
                self.problem.emit(f"The session cannot be saved in {self.folder}: {detail}")
            self._failed = True
            return False
        self._failed = False
        return True
