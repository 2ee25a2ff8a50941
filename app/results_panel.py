"""The values of the frame on screen: HC, BPD, OFD, GA, centile, spacing, quality, decision."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..core.exam.kept_caliper import EDITED_NOTE
from ..core.records import MeasurementRecord
from ..core.session.frames import FrameState, failure_text, frame_state, review_text
from ..core.skull import BPD_CONVENTION_BY_EQUATION
from ..core.spacing import Spacing
from .formatting import (
    DASH,
    format_centile,
    format_length,
    format_quality,
    format_spacing,
    format_weeks,
)

_BANNER_STYLE = "QLabel {{ background: {bg}; color: white; font-weight: bold; padding: 6px; }}"
BPD_CONVENTION_TIP = "Which BPD each equation expects:\n" + "\n".join(
    f"{equation}: {convention}" for equation, convention in BPD_CONVENTION_BY_EQUATION.items()
)
UNCALIBRATED_TEXT = "UNCALIBRATED: lengths are in PIXELS.\nSet the pixel size or calibrate."


def _banner(text: str, background: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(_BANNER_STYLE.format(bg=background))
    label.setVisible(False)
    return label


class ResultsPanel(QWidget):
    """Shows one record; buttons are wired by the Measure tab (their QActions)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.uncalibrated_banner = _banner(UNCALIBRATED_TEXT, "#c62828")
        self.review_banner = _banner("", "#e67e00")
        self.error_banner = _banner("", "#8e2424")
        self.spacing_label = QLabel(DASH)
        self.spacing_label.setWordWrap(True)
        self.pixel_size_button = QPushButton("Pixel size…")
        self.calibrate_button = QPushButton("Calibrate…")
        self.hc_label = QLabel("HC " + DASH)
        font = QFont(self.hc_label.font())
        font.setPointSize(font.pointSize() + 8)
        font.setBold(True)
        self.hc_label.setFont(font)
        self.hc_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.value_labels = {
            name: QLabel(DASH)
            for name in (
                "bpd",
                "ofd",
                "ga_hadlock",
                "ga_intergrowth",
                "centile",
                "quality",
                "origin",
                "decision",
                "model",
            )
        }
        # GA by dates is entered per exam in the exam panel; here, that of this frame's exam.
        self.ga_by_dates = QLabel(DASH)
        self.ga_by_dates.setWordWrap(True)
        self.ga_by_dates.setToolTip(
            "GA by dates of this frame's exam (entered in the Exam tab): it gives the HC "
            "centile and z-score (INTERGROWTH-21st, 14-40 weeks)."
        )
        self.bpd_outer_inner = QLabel(DASH)
        self.bpd_outer_inner.setWordWrap(True)
        self.bpd_outer_inner.setToolTip(BPD_CONVENTION_TIP)
        self.accept_button = QPushButton("Accept (Enter)")
        self.reject_button = QPushButton("Reject (R)")
        self.reset_button = QPushButton("Reset to automatic")
        self.copy_button = QPushButton("Copy values")
        self._build_layout()

    def _build_layout(self) -> None:
        spacing_box = QGroupBox("Pixel spacing")
        spacing_layout = QVBoxLayout(spacing_box)
        spacing_layout.addWidget(self.spacing_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pixel_size_button)
        buttons.addWidget(self.calibrate_button)
        spacing_layout.addLayout(buttons)

        values_box = QGroupBox("Measurement")
        form = QFormLayout(values_box)
        form.addRow(self.hc_label)
        labels = self.value_labels
        form.addRow("BPD (outer-outer)", labels["bpd"])
        form.addRow("BPD (outer-inner)", self.bpd_outer_inner)
        form.addRow("OFD (outer-outer)", labels["ofd"])
        form.addRow("GA, Hadlock 1984", labels["ga_hadlock"])
        form.addRow("GA, INTERGROWTH-21st", labels["ga_intergrowth"])
        form.addRow("GA by dates", self.ga_by_dates)
        form.addRow("HC centile", labels["centile"])
        form.addRow("Quality", labels["quality"])
        form.addRow("Ellipse", labels["origin"])
        form.addRow("Model", labels["model"])
        form.addRow("Decision", labels["decision"])
        for label in labels.values():
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)

        decision = QHBoxLayout()
        decision.addWidget(self.accept_button)
        decision.addWidget(self.reject_button)
        more = QHBoxLayout()
        more.addWidget(self.reset_button)
        more.addWidget(self.copy_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.uncalibrated_banner)
        layout.addWidget(self.error_banner)
        layout.addWidget(self.review_banner)
        layout.addWidget(spacing_box)
        layout.addWidget(values_box)
        layout.addLayout(decision)
        layout.addLayout(more)
        layout.addStretch(1)

    # Display -----------------------------------------------------------------------------------
    def show_spacing(self, spacing: Spacing | None) -> None:
        self.spacing_label.setText(format_spacing(spacing) if spacing is not None else DASH)
        uncalibrated = spacing is not None and not spacing.calibrated
        self.uncalibrated_banner.setVisible(uncalibrated)
        loud = "color: #c62828; font-weight: bold;"
        self.spacing_label.setStyleSheet(loud if uncalibrated else "")

    def show_message(self, text: str | None) -> None:
        """An error or state line for a frame without values (e.g. "measuring…")."""
        self.error_banner.setText(text or "")
        self.error_banner.setVisible(bool(text))

    def show_record(self, record: MeasurementRecord | None) -> None:
        if record is None:
            self._clear_values()
            return
        self.show_spacing(record.spacing)
        unit = record.unit
        self.hc_label.setText(f"HC {format_length(record.hc, unit)}")
        labels = self.value_labels
        labels["bpd"].setText(format_length(record.bpd, unit))
        labels["ofd"].setText(format_length(record.ofd, unit))
        for name, weeks, note in (
            ("ga_hadlock", record.ga_hadlock_weeks, record.ga_hadlock_note),
            ("ga_intergrowth", record.ga_intergrowth_weeks, record.ga_intergrowth_note),
        ):
            labels[name].setText(_ga_text(weeks, note))
            labels[name].setToolTip(note)
        labels["centile"].setText(
            format_centile(record.centile, record.z_score)
            if record.centile is not None
            else (
                "set GA by dates"
                if frame_state(record) is FrameState.OK and record.spacing.calibrated
                else DASH
            )
        )
        quality = format_quality(record)
        if record.origin == "edited" and quality != DASH:
            quality += " (of the automatic ellipse)"
        labels["quality"].setText(quality)
        labels["origin"].setText("edited by hand" if record.origin == "edited" else "automatic")
        labels["model"].setText(record.model or DASH)
        labels["decision"].setText(
            {True: "accepted", False: "rejected"}.get(record.accepted, "not decided")
        )
        reasons = review_text(record)
        self.review_banner.setText("REVIEW: " + reasons if reasons else "")
        self.review_banner.setVisible(bool(reasons))
        # A frame without an ellipse says why (no head, error); review reasons have their banner.
        self.show_message(failure_text(record) or None)

    def _clear_values(self) -> None:
        self.hc_label.setText("HC " + DASH)
        for label in self.value_labels.values():
            label.setText(DASH)
        self.review_banner.setVisible(False)

    def show_ga_by_dates(self, weeks: float | None) -> None:
        """GA by dates of the exam of the frame on screen (None: not entered there)."""
        self.ga_by_dates.setText(
            "not entered" if weeks is None else format_weeks(weeks) + " (exam)"
        )

    def show_bpd_outer_inner(self, length: float | None, unit: str, note: str = "") -> None:
        """The outer-to-inner caliper's length (None: not found or no frame; `note` says why)."""
        if length is None:
            self.bpd_outer_inner.setText(DASH if not note else "not found")
        else:
            edited = ", edited" if note == EDITED_NOTE else ""  # placed by hand
            self.bpd_outer_inner.setText(f"{format_length(length, unit)} (Hadlock BPD{edited})")
        self.bpd_outer_inner.setToolTip(f"{note}\n\n{BPD_CONVENTION_TIP}".strip())


def _ga_text(weeks: float | None, note: str) -> str:
    """Weeks and days, or a short reason (the full note is the label's tooltip)."""
    if weeks is not None:
        return format_weeks(weeks)
    if note.startswith("uncalibrated"):
        return "needs the pixel size"
    if "outside" in note:
        return "outside its range"
    return DASH
