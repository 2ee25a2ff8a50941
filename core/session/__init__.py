"""The measuring session, without Qt: frames, their records and decisions, undo, calibration.

The window's tabs are views over one `MeasureSession` (napari's `components/` vs `_qt/` split):
the session holds every fact a person would not want to lose (what was opened, the automatic and
the edited ellipse, accept/reject, calibration, GA by dates) and tells its observers with plain
callbacks; the Qt tabs turn those callbacks into widgets. `autosave` writes the session to disk
as it changes so that a crash or a quit never loses a review.
"""

from .calibration import CalibrationState
from .commands import FrameUndoStacks, SetRecord
from .datings import ExamDating
from .frames import FrameEntry, FrameKey, FrameState, frame_state, status_word
from .session import Decision, ListedFile, MeasureSession

__all__ = [
    "CalibrationState",
    "Decision",
    "ExamDating",
    "FrameEntry",
    "FrameKey",
    "FrameState",
    "FrameUndoStacks",
    "ListedFile",
    "MeasureSession",
    "SetRecord",
    "frame_state",
    "status_word",
]
