"""The exam panel: one exam at a time, its GA by dates, its values and what they say.

Everything shown is computed by `core.exam` for the exam on show only: its own GA by dates (LMP,
EDD or GA at the exam date, with the exam date) drives its centile and its discrepancy, so a
frame of another patient is never read against it. The frames ticked in the list are the ones
whose mean makes the exam value (by default the best `limit` usable ones, as `choose_frames`
picks them). The frame picked in the list can be moved to another exam (or a new one), and its
values can be selected as the exam value instead of the mean (per parameter from the list's
context menu): the panel asks (`move_requested`, `selection_requested`) and the session keeps
what was decided.

Enter in the panel's fields applies the dating and is consumed there: it never reaches a
window-wide shortcut such as the Measure tab's "Accept and next".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from html import escape

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.exam import ACOG_2017_MARGINS, DEFAULT_LIMIT, Dating, DiscrepancyMargins, Exam
from ..core.exam.assessment import EQUATION_REFERENCES, ExamAssessment, assess_exam
from ..core.exam.dating import EDD, GA_AT_EXAM, LMP, format_ga_days
from ..core.exam.grouping import FrameKey, frame_key
from ..core.exam.values import (
    LABELS,
    PARAMETERS,
    ParameterValue,
    choose_frames,
    chosen_with_selection,
    exam_values,
    unusable_reason,
    usable_selection,
)
from ..core.report.content import frame_name, value_how
from .keys import EnterApplies

NOT_ENTERED = ""
KINDS = ((NOT_ENTERED, "Not entered"), (LMP, "LMP"), (EDD, "EDD"), (GA_AT_EXAM, "GA at exam date"))
_NO_DATE = QDate(1900, 1, 1)  # the QDateEdit minimum, shown as "not recorded"
_CHECKED = Qt.CheckState.Checked
_FLAG_STYLE = "color: #c62828; font-weight: bold;"
NEW_EXAM = ""  # the move target that makes a new exam
SELECTABLE = (*PARAMETERS, "bpd_outer_inner")  # "use this one" for all of them at once


def _to_qdate(day: dt.date | None) -> QDate:
    return _NO_DATE if day is None else QDate(day.year, day.month, day.day)


def _to_date(qdate: QDate) -> dt.date | None:
    return None if qdate == _NO_DATE else dt.date(qdate.year(), qdate.month(), qdate.day())


def _weeks_text(weeks: float | None) -> str:
    return "-" if weeks is None else f"{weeks:.1f} wk ({format_ga_days(weeks * 7)})"


class ExamPanel(QWidget):
    """Shows one exam of `set_exams(...)` (chosen in the combo box).

    Signals: `dating_changed(exam_key)` after GA by dates or the exam date of that exam was set
    (the `Exam` object itself is updated); `chosen_changed(exam_key, [frame keys])` when the user
    ticks or unticks a frame for the exam value; `move_requested(frame key, exam key)` to move a
    frame (exam key `NEW_EXAM`: into a new exam); `selection_requested(exam key, frame key or
    None, [parameters])` to make that frame's values the exam's (None: the mean again).
    """

    dating_changed = Signal(str)
    chosen_changed = Signal(str, list)
    move_requested = Signal(object, str)
    selection_requested = Signal(str, object, list)

    def __init__(
        self,
        parent: QWidget | None = None,
        limit: int = DEFAULT_LIMIT,
        margins: DiscrepancyMargins = ACOG_2017_MARGINS,
    ) -> None:
        super().__init__(parent)
        self.limit = limit
        self.margins = margins
        self._exams: list[Exam] = []
        self._chosen: dict[str, list[FrameKey]] = {}  # per exam key, once the user ticked
        self.selected: dict[str, dict[str, FrameKey]] = {}  # per exam key: the session's choice
        self._loading = False
        self.assessment: ExamAssessment | None = None
        self.values: dict[str, ParameterValue] = {}

        self.exam_box = QComboBox()
        self.frames_list = QListWidget()
        self.frames_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.frames_list.setMaximumHeight(110)
        self.frames_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.move_box = QComboBox()
        self.move_box.setToolTip("The exam the frame picked in the list moves to")
        self.move_button = QPushButton("Move frame")
        self.use_button = QPushButton("Use this one")
        self.use_button.setToolTip(
            "The picked frame's values become the exam values instead of the mean "
            "(per parameter: right-click the frame)"
        )
        self.mean_button = QPushButton("Use the mean")
        for button in (self.move_button, self.use_button, self.mean_button):
            button.setAutoDefault(False)
        self.choice_note = QLabel(wordWrap=True)

        self.kind_box = QComboBox()
        for kind, text in KINDS:
            self.kind_box.addItem(text, kind)
        self.date_edit = self._date_edit()
        self.weeks_box = QSpinBox(minimum=0, maximum=44, suffix=" w")
        self.days_box = QSpinBox(minimum=0, maximum=6, suffix=" d")
        self.exam_date_edit = self._date_edit()
        self.apply_button = QPushButton("Apply to this exam")
        self.apply_button.setAutoDefault(False)
        self.dating_error = QLabel(wordWrap=True, styleSheet=_FLAG_STYLE)

        self.values_table = self._table(("Parameter", "Exam value", "From", "Spread"))
        self.ga_label = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.dates_label = QLabel(wordWrap=True)
        self.centile_label = QLabel(wordWrap=True)
        self.discrepancy_label = QLabel(wordWrap=True)
        for label in (self.dates_label, self.centile_label, self.discrepancy_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self._layout()
        self._enter_filter = EnterApplies(self.apply_dating, self)
        for field in (self.date_edit, self.weeks_box, self.days_box, self.exam_date_edit):
            field.installEventFilter(self._enter_filter)
            field.lineEdit().installEventFilter(self._enter_filter)
        self.kind_box.installEventFilter(self._enter_filter)

        self.exam_box.currentIndexChanged.connect(self._show_current)
        self.kind_box.currentIndexChanged.connect(self._update_fields)
        self.apply_button.clicked.connect(self.apply_dating)
        self.frames_list.itemChanged.connect(self._on_frame_ticked)
        self.frames_list.customContextMenuRequested.connect(self._frame_menu)
        self.move_button.clicked.connect(self._move_picked)
        self.use_button.clicked.connect(lambda: self.select_picked(SELECTABLE))
        self.mean_button.clicked.connect(lambda: self._request_selection(None, SELECTABLE))
        self._show_current()

    # ---- building ------------------------------------------------------------------------------

    @staticmethod
    def _date_edit() -> QDateEdit:
        edit = QDateEdit(calendarPopup=True, displayFormat="yyyy-MM-dd")
        edit.setMinimumDate(_NO_DATE)
        edit.setSpecialValueText("not recorded")
        edit.setDate(_NO_DATE)
        return edit

    @staticmethod
    def _table(header: tuple[str, ...]) -> QTableWidget:
        table = QTableWidget(0, len(header))
        table.setHorizontalHeaderLabels(header)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header_view = table.horizontalHeader()
        # The first and last columns (names, spreads and references: long text) share the width
        # left by the short middle ones and wrap; the table never grows wider than the panel,
        # which has no horizontal scroll bar to show what would be cut off.
        for column in range(len(header)):
            edge = column in (0, len(header) - 1)
            mode = (
                QHeaderView.ResizeMode.Stretch if edge else QHeaderView.ResizeMode.ResizeToContents
            )
            header_view.setSectionResizeMode(column, mode)
        # A column that changes width (the stretched last one follows the panel) rewraps its
        # text: the rows must be measured again or their text is cut off. After the event
        # (while the header signals, the table still reports the old width), and once for all
        # the columns one resize of the panel moves: a restarted zero-interval timer.
        refit = QTimer(table, singleShot=True, interval=0)
        refit.timeout.connect(lambda: _fit_rows(table))
        header_view.sectionResized.connect(refit.start)
        return table

    def _layout(self) -> None:
        dating = QGroupBox("GA by dates (this exam only)")
        form = QFormLayout(dating)
        form.addRow("Entered as", self.kind_box)
        form.addRow("LMP / EDD", self.date_edit)
        ga_row = QHBoxLayout()
        ga_row.addWidget(self.weeks_box)
        ga_row.addWidget(self.days_box)
        form.addRow("GA at exam date", ga_row)
        form.addRow("Exam date", self.exam_date_edit)
        form.addRow(self.apply_button)
        form.addRow(self.dating_error)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Exam"))
        top.addWidget(self.exam_box, 1)
        layout.addLayout(top)
        layout.addWidget(QLabel("Frames (ticked: in the exam value)"))
        layout.addWidget(self.frames_list)
        choice_row = QHBoxLayout()
        choice_row.addWidget(self.use_button)
        choice_row.addWidget(self.mean_button)
        layout.addLayout(choice_row)
        move_row = QHBoxLayout()
        move_row.addWidget(self.move_button)
        move_row.addWidget(QLabel("to"))
        move_row.addWidget(self.move_box, 1)
        layout.addLayout(move_row)
        layout.addWidget(self.choice_note)
        layout.addWidget(dating)
        layout.addWidget(self.values_table)
        layout.addWidget(self.ga_label)
        for label in (self.dates_label, self.centile_label, self.discrepancy_label):
            layout.addWidget(label)
        layout.addStretch(1)

    # ---- the exams -----------------------------------------------------------------------------

    def set_exams(
        self,
        exams: Iterable[Exam],
        selected: dict[str, dict[str, FrameKey]] | None = None,
    ) -> None:
        """The exams to show (e.g. an `ExamBook`) with the selected measurements per exam key;
        the one on show stays when still there. Call again after records changed (an edit, an
        acceptance) to recompute."""
        current = self.current_exam
        self._exams = list(exams)
        if selected is not None:
            self.selected = selected
        keys = {exam.key for exam in self._exams}
        self._chosen = {key: frames for key, frames in self._chosen.items() if key in keys}
        self._loading = True
        self.exam_box.clear()
        for exam in self._exams:
            count = len(exam.records)
            self.exam_box.addItem(f"{exam.label} ({count} frame{'s' * (count != 1)})", exam.key)
        self._loading = False
        if current is not None and current.key in keys:
            self.show_exam(current.key)
        else:
            self._show_current()

    def show_exam(self, key: str) -> None:
        index = self.exam_box.findData(key)
        if index < 0:
            raise KeyError(f"no exam {key!r}")
        self.exam_box.setCurrentIndex(index)
        self._show_current()

    @property
    def current_exam(self) -> Exam | None:
        index = self.exam_box.currentIndex()
        return self._exams[index] if 0 <= index < len(self._exams) else None

    def _chosen_of(self, exam: Exam) -> list[FrameKey] | None:
        """The ticked frames; untouched, the default choice with the selected frames in it."""
        selected = self.selected.get(exam.key)
        return chosen_with_selection(exam.records, self.limit, self._chosen.get(exam.key), selected)

    def chosen_frames(self, key: str) -> list[FrameKey] | None:
        """The frames the user ticked for exam `key`, or None (the default choice)."""
        return self._chosen.get(key)

    # ---- GA by dates ---------------------------------------------------------------------------

    def entered_dating(self) -> Dating | None:
        """The dating in the fields (None for "Not entered"); ValueError with the reason."""
        kind = self.kind_box.currentData()
        if kind == NOT_ENTERED:
            return None
        if kind in (LMP, EDD):
            day = _to_date(self.date_edit.date())
            if day is None:
                raise ValueError(f"enter the {kind.upper()} date")
            return Dating(kind, date=day)
        return Dating.from_ga(self.weeks_box.value(), self.days_box.value())

    def apply_dating(self) -> None:
        """Set GA by dates and the exam date of the exam on show (and of no other)."""
        exam = self.current_exam
        if exam is None:
            return
        try:
            dating = self.entered_dating()
        except ValueError as error:
            self.dating_error.setText(f"Not applied: {error}.")
            return
        exam.dating = dating
        exam.exam_date = _to_date(self.exam_date_edit.date())
        self.dating_error.clear()
        self._recompute()
        self.dating_changed.emit(exam.key)

    def _load_dating(self, exam: Exam | None) -> None:
        dating = exam.dating if exam else None
        kind = NOT_ENTERED if dating is None else dating.kind
        self.kind_box.setCurrentIndex(self.kind_box.findData(kind))
        self.date_edit.setDate(_to_qdate(dating.date if dating else None))
        ga_days = dating.ga_days if dating and dating.ga_days is not None else 0
        self.weeks_box.setValue(ga_days // 7)
        self.days_box.setValue(ga_days % 7)
        self.exam_date_edit.setDate(_to_qdate(exam.exam_date if exam else None))
        self.dating_error.clear()
        self._update_fields()

    def _update_fields(self) -> None:
        kind = self.kind_box.currentData()
        self.date_edit.setEnabled(kind in (LMP, EDD))
        self.weeks_box.setEnabled(kind == GA_AT_EXAM)
        self.days_box.setEnabled(kind == GA_AT_EXAM)

    # ---- showing -------------------------------------------------------------------------------

    def _show_current(self) -> None:
        if self._loading:
            return
        exam = self.current_exam
        self.setEnabled(exam is not None)
        self._load_dating(exam)
        self._fill_frames(exam)
        self._fill_move_targets(exam)
        self.choice_note.clear()
        self._recompute()

    # ---- regrouping and the selected measurement -----------------------------------------------

    def _fill_move_targets(self, exam: Exam | None) -> None:
        self.move_box.clear()
        for other in self._exams:
            if exam is None or other.key != exam.key:
                self.move_box.addItem(other.label, other.key)
        self.move_box.addItem("a new exam", NEW_EXAM)

    def picked_frame(self) -> FrameKey | None:
        item = self.frames_list.currentItem()
        return None if item is None else tuple(item.data(Qt.ItemDataRole.UserRole))

    def _move_picked(self) -> None:
        key = self.picked_frame()
        if key is None:
            self.choice_note.setText("Pick a frame in the list first.")
            return
        self.move_requested.emit(key, self.move_box.currentData())

    def select_picked(self, parameters: Iterable[str]) -> None:
        """The picked frame's values of `parameters` become the exam's. Among ticked frames it
        is ticked too when there is room; untouched, the default choice takes it in."""
        exam, key = self.current_exam, self.picked_frame()
        if exam is None or key is None:
            self.choice_note.setText("Pick a frame in the list first.")
            return
        record = next(r for r in exam.records if frame_key(r) == key)
        if unusable_reason(record):
            self.choice_note.setText(f"Not usable: {unusable_reason(record)}.")
            return
        chosen = self._chosen.get(exam.key)
        used = [frame_key(r) for r in choose_frames(exam.records, self.limit, chosen)]
        if chosen is not None and key not in used:
            if len(used) >= self.limit:
                self.choice_note.setText(
                    f"At most {self.limit} measurements make the exam value: untick one first."
                )
                return
            self._chosen[exam.key] = [*used, key]
            self.chosen_changed.emit(exam.key, list(self._chosen[exam.key]))
        self._request_selection(key, parameters)

    def _request_selection(self, key: FrameKey | None, parameters: Iterable[str]) -> None:
        exam = self.current_exam
        if exam is not None:
            self.choice_note.clear()
            self.selection_requested.emit(exam.key, key, list(parameters))

    def _frame_menu(self, position) -> None:
        item = self.frames_list.itemAt(position)
        if item is None:
            return
        self.frames_list.setCurrentItem(item)
        menu = QMenu(self)
        for name in SELECTABLE:
            action = menu.addAction(f"Use this one for {LABELS[name]}")
            action.triggered.connect(lambda _=False, n=name: self.select_picked([n]))
        menu.addAction("Use this one for all").triggered.connect(
            lambda: self.select_picked(SELECTABLE)
        )
        menu.addAction("Use the mean").triggered.connect(
            lambda: self._request_selection(None, SELECTABLE)
        )
        move = menu.addMenu("Move to")
        for index in range(self.move_box.count()):
            target = self.move_box.itemData(index)
            action = move.addAction(self.move_box.itemText(index))
            action.triggered.connect(
                lambda _=False, t=target: self.move_requested.emit(self.picked_frame(), t)
            )
        menu.popup(self.frames_list.viewport().mapToGlobal(position))

    def _fill_frames(self, exam: Exam | None) -> None:
        picked = self.picked_frame()  # stays picked when the list is shown again
        self._loading = True
        self.frames_list.clear()
        if exam is not None:
            chosen = self._chosen_of(exam)
            used = {frame_key(r) for r in choose_frames(exam.records, self.limit, chosen)}
            selected = self.selected.get(exam.key, {})
            for record in exam.records:
                reason = unusable_reason(record)
                hc = "-" if record.hc is None else f"HC {record.hc:.1f} {record.unit}"
                text = f"{frame_name(record)}: {hc} ({reason or record.status})"
                mine = [LABELS[n] for n in SELECTABLE if selected.get(n) == frame_key(record)]
                if mine:
                    text += f" [selected: {', '.join(mine)}]"
                item = QListWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, frame_key(record))
                if reason:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                    item.setToolTip(f"Not usable: {reason}")
                else:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    checked = frame_key(record) in used
                    item.setCheckState(
                        Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
                    )
                self.frames_list.addItem(item)
                if frame_key(record) == picked:
                    self.frames_list.setCurrentItem(item)
        self._loading = False

    def _on_frame_ticked(self, item: QListWidgetItem) -> None:
        exam = self.current_exam
        if self._loading or exam is None:
            return
        rows = [self.frames_list.item(i) for i in range(self.frames_list.count())]
        ticked = [r.data(Qt.ItemDataRole.UserRole) for r in rows if r.checkState() == _CHECKED]
        if len(ticked) > self.limit:  # at most `limit` measurements make an exam value
            self._loading = True
            item.setCheckState(Qt.CheckState.Unchecked)
            self._loading = False
            return
        self._chosen[exam.key] = [tuple(key) for key in ticked]
        self._recompute()
        self.chosen_changed.emit(exam.key, list(self._chosen[exam.key]))

    def _recompute(self) -> None:
        exam = self.current_exam
        if exam is None:
            self.values, self.assessment = {}, None
            self.values_table.setRowCount(0)
            for label in (self.ga_label, self.centile_label, self.discrepancy_label):
                label.clear()
            self.dates_label.setText("No exam.")
            return
        chosen = self._chosen_of(exam)
        self.values = exam_values(exam.records, self.limit, chosen)
        selected = usable_selection(self.values, self.selected.get(exam.key))
        if selected:  # the person's choice, while it is among the exam's measurements
            self.values = exam_values(exam.records, self.limit, chosen, selected)
        self.assessment = assess_exam(exam, self.values, self.margins)
        self._fill_values()
        self._fill_assessment(exam, self.assessment)

    def _fill_values(self) -> None:
        rows = [
            (
                LABELS.get(name, name),
                "-" if value.value is None else f"{value.value:.1f} {value.unit}",
                value_how(value),
                value.spread_text() or "-",
            )
            for name, value in self.values.items()
        ]
        _fill(self.values_table, rows)

    def _fill_assessment(self, exam: Exam, assessment: ExamAssessment) -> None:
        ga_rows = [
            (
                ga.method,
                _weeks_text(ga.weeks),
                EQUATION_REFERENCES.get(ga.method, "") if ga.weeks is not None else ga.note,
            )
            for ga in assessment.ga_by_equation
        ] or [("no usable HC in this exam", "-", "")]
        self.ga_label.setText(_html_table(("GA from the exam HC by", "GA", "Reference"), ga_rows))

        days = assessment.ga_dates_days
        if days is None:
            self.dates_label.setText(f"GA by dates: {assessment.dates_note}")
        else:
            how = "entered" if exam.dating.kind == GA_AT_EXAM else exam.dating.describe()
            on = exam.exam_date.isoformat() if exam.exam_date else "the exam date"
            self.dates_label.setText(f"GA by dates: {format_ga_days(days)} on {on} ({how})")

        centile = assessment.centile
        if centile.text:
            z = "" if centile.extreme else f" (z {centile.z_score:+.2f})"
            self.centile_label.setText(f"HC centile for GA by dates: {centile.text}{z}")
        else:
            self.centile_label.setText(f"HC centile: none ({centile.note})")
        self.centile_label.setStyleSheet(_FLAG_STYLE if centile.extreme else "")

        discrepancy = assessment.discrepancy
        if discrepancy is None:
            self.discrepancy_label.setText("Discrepancy: needs GA by dates and an exam HC")
            self.discrepancy_label.setStyleSheet("")
        else:
            flag = "FLAG: " if discrepancy.flagged else ""
            self.discrepancy_label.setText(
                f"{flag}GA by biometry ({assessment.biometry_method}) minus GA by dates: "
                f"{discrepancy.text()}"
            )
            self.discrepancy_label.setStyleSheet(_FLAG_STYLE if discrepancy.flagged else "")


def _fill(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for row, cells in enumerate(rows):
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            table.setItem(row, column, item)
    _fit_rows(table)


def _fit_rows(table: QTableWidget) -> None:
    """Rows as tall as their wrapped text at the current column widths; the table as tall as
    its rows (it sits in the panel's scroll area, never scrolls itself)."""
    table.resizeRowsToContents()
    rows_height = sum(table.rowHeight(r) for r in range(table.rowCount()))
    table.setFixedHeight(table.horizontalHeader().height() + rows_height + 2 * table.frameWidth())


def _html_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A small rich-text table for a QLabel: it wraps long references to the panel's width."""
    head = "".join(f"<th align='left'>{escape(text)}</th>" for text in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(text)}</td>" for text in row) + "</tr>" for row in rows
    )
    return f"<table cellspacing='0' cellpadding='3' border='1'><tr>{head}</tr>{body}</table>"
