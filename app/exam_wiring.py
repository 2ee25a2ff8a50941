"""The Measure tab's exams: the open frames grouped into exams, shown in the exam panel.

The frames with a record are grouped by `core.exam.group_into_exams` (DICOM by study, other files
by folder) each time the session changes (batched by a short timer). GA by dates entered in the
panel is stored in the session for the files of THAT exam (`MeasureSession.set_exam_dating`), so
the centile and z-score of a frame come from its own exam's dating.

Frames the person moved between exams (`MeasureSession.move_frame`) are regrouped after the
automatic grouping (`core.exam.grouping.regroup`) and take their new exam's dating; the
measurement selected as an exam's value is kept in the session too (`select_measurement`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from ..core.exam import ExamBook, group_into_exams
from ..core.exam.grouping import FrameKey, StudyHeader, read_study_header, regroup
from ..core.session import ExamDating, MeasureSession
from .exam_panel import NEW_EXAM, ExamPanel

REGROUP_DELAY_MS = 150  # many frames change at once (a clip measured): regroup once


class ExamWiring(QObject):
    """Keeps `panel` showing the exams of `session`; `book` is the grouping on show."""

    def __init__(self, session: MeasureSession, panel: ExamPanel, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.panel = panel
        self.book = ExamBook()
        self._headers: dict[str, StudyHeader | None] = {}  # a file's header is read once
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REGROUP_DELAY_MS)
        self._timer.timeout.connect(self._refresh_later)
        session.frame_listeners.append(lambda _key: self._timer.start())
        session.listeners.append(self._timer.start)  # files closed, datings restored
        panel.dating_changed.connect(self._on_dating_changed)
        panel.move_requested.connect(self.move_frame)
        panel.selection_requested.connect(self.select)

    def _read_study(self, path: str | Path) -> StudyHeader | None:
        path = str(path)
        if path not in self._headers:
            self._headers[path] = read_study_header(path)
        return self._headers[path]

    def records(self) -> list:
        session = self.session
        return [r for r in (session.record(key) for key in session.frame_keys()) if r]

    def editing(self) -> bool:
        """The person is in the panel (typing a dating, ticking frames): showing the exams
        again now would overwrite what they have not applied yet."""
        focus = QApplication.focusWidget()
        return focus is not None and self.panel.isAncestorOf(focus)

    def _refresh_later(self) -> None:
        if self.editing():
            self._timer.start()  # again once the person has left the panel
        else:
            self.refresh()

    def refresh(self) -> ExamBook:
        """Regroup now and show the exams; a file new to an exam takes the exam's dating."""
        self._timer.stop()
        book = self._grouped()
        if self._spread_datings(book):  # records were re-derived: group their new values
            book = self._grouped()
        for exam in book:
            dating = self._stored_dating(exam)
            if dating is not None:
                exam.dating = dating.dating
                exam.exam_date = dating.exam_date or exam.exam_date
        self.book = book
        self.panel.set_exams(book, self.selected())
        return book

    def _grouped(self) -> ExamBook:
        book = group_into_exams(self.records(), self._read_study)
        return regroup(book, self.session.choices.moves)

    def _stored_dating(self, exam) -> ExamDating | None:
        datings = (self.session.dating_for_frame(key) for key in exam.frame_keys())
        return next((d for d in datings if d is not None), None)

    def _spread_datings(self, book: ExamBook) -> bool:
        """Give an exam's dating to its frames that have none yet; True if any changed."""
        changed = False
        for exam in book:
            dating = self._stored_dating(exam)
            missing = [k for k in exam.frame_keys() if self.session.dating_for_frame(k) is None]
            if dating is not None and missing:
                self.session.set_frames_dating(missing, dating)
                changed = True
        return changed

    def selected(self) -> dict[str, dict[str, FrameKey]]:
        """{exam key: {parameter: the frame selected as the exam value}} (the report's)."""
        choices = self.session.choices
        return {exam.key: choices.selected_in(exam.frame_keys()) for exam in self.book}

    def move_frame(self, key: FrameKey, target: str) -> str:
        """Move the frame into exam `target` (`NEW_EXAM`: a new one); returns the exam's key.
        The frame takes that exam's GA by dates."""
        key = (str(key[0]), int(key[1]))
        if target == NEW_EXAM:
            target = self.session.choices.new_exam_key(exam.key for exam in self.book)
        dating = None
        if any(exam.key == target for exam in self.book):
            exam = self.book.exam(target)
            dating = ExamDating(exam.dating, exam.exam_date)
        self.session.move_frame(key, target, None if dating == ExamDating() else dating)
        self.refresh()
        return target

    def select(self, exam_key: str, key: FrameKey | None, parameters: list[str]) -> None:
        """`key`'s values of `parameters` become exam `exam_key`'s (None: the mean again)."""
        frames = self.book.exam(exam_key).frame_keys()
        for parameter in parameters:
            self.session.select_measurement(parameter, key, frames)
        self.refresh()

    def chosen_frames(self) -> dict[str, list]:
        """{exam key: the frames the person ticked for its values} (the report's choice)."""
        chosen = {exam.key: self.panel.chosen_frames(exam.key) for exam in self.book}
        return {key: frames for key, frames in chosen.items() if frames is not None}

    def exam_of(self, key: tuple[str, int]):
        try:
            return self.book.exam_of(key)
        except KeyError:
            return None

    def _on_dating_changed(self, exam_key: str) -> None:
        exam = self.book.exam(exam_key)
        dating = ExamDating(exam.dating, exam.exam_date)
        self.session.set_frames_dating(
            exam.frame_keys(), None if dating == ExamDating() else dating
        )
        self.refresh()
