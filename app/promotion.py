"""'Use this model' with proof: the candidate is compared with the model in use on the run's
held-out frames (in a worker thread), the comparison is shown (table and Bland-Altman plot), and
a model that is worse or judged on too few frames is only used with a typed reason. Every
promotion goes into the model history, from which the previous model is one click away."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.model_history import (
    HISTORY_FILE,
    ModelHistory,
    ModelHistoryError,
    comparison_digest,
    promotion_refusal,
)
from ..core.run_folder import RunSummary
from ..core.training_session import COMPARISON_COLUMNS, agreement_plot, comparison_rows
from .workers import describe_error

COMPARISON_FILE = "comparison.json"  # the full report, beside the run's model
SERIES_COLOURS = [(60, 140, 230), (230, 90, 60)]


@dataclass(frozen=True)
class ComparisonRequest:
    candidate: Path
    current: Path
    run_folder: Path
    device: str = "auto"


def run_comparison(request: ComparisonRequest) -> tuple[dict, dict]:
    """(comparison report, the run's data settings): the candidate against the model in use on
    the run's held-out frames. Slow (two models over the frames): never on the UI thread."""
    from ..core.training_session import compare_on_held_out

    report, held = compare_on_held_out(
        request.run_folder, request.candidate, request.current, request.device
    )
    return report, held.data


class _JobSignals(QObject):
    done = Signal(object, object)  # (report, data settings)
    failed = Signal(str)


class _ComparisonJob(QRunnable):
    def __init__(self, runner: Callable, request: ComparisonRequest, signals: _JobSignals):
        super().__init__()
        self._runner, self._request, self._signals = runner, request, signals

    def run(self) -> None:
        try:
            report, data = self._runner(self._request)
        except Exception as error:  # the message goes to the window
            self._signals.failed.emit(describe_error(error))
            return
        self._signals.done.emit(report, data)


class PromotionDialog(QDialog):
    """The comparison, its verdict, and the promotion button (a refused one needs a reason)."""

    def __init__(self, run_name: str, report: dict | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Use the model of {run_name}?")
        self.report = report
        layout = QVBoxLayout(self)
        verdict = "not compared" if report is None else report["verdict"]
        self.verdict_label = QLabel(f"Verdict on the held-out frames: <b>{verdict}</b>")
        layout.addWidget(self.verdict_label)
        self.table = QTableWidget(0, len(COMPARISON_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COMPARISON_COLUMNS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.plot = pg.PlotWidget()
        self.plot.addLegend(offset=(-5, 5))
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        for side in ("left", "bottom"):  # Dice differences read as they are, not in milli-units
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        if report is not None:
            self._fill(report)
            layout.addWidget(self.table)
            layout.addWidget(self.plot, 1)
        self.refusal_label = QLabel()
        self.refusal_label.setWordWrap(True)
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("reason to use it anyway (kept in the model history)")
        self.use_button = QPushButton("Use this model")
        self.cancel_button = QPushButton("Cancel")
        layout.addWidget(self.refusal_label)
        layout.addWidget(self.reason_edit)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.reason_edit.textChanged.connect(self._update)
        self.use_button.clicked.connect(self.accept)
        self.cancel_button.clicked.connect(self.reject)
        self.resize(760, 620)
        self._update()

    def _fill(self, report: dict) -> None:
        rows = comparison_rows(report)
        self.table.setRowCount(len(rows))
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        content = agreement_plot(report)
        self.plot.setTitle(content.title)
        self.plot.setLabel("bottom", content.x_label)
        self.plot.setLabel("left", content.y_label)
        self.plot_series = content.series
        for index, (name, means, diffs, bias, lower, upper) in enumerate(content.series):
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            self.plot.plot(means, diffs, pen=None, symbol="o", symbolSize=5, symbolBrush=colour,
                           name=name)  # fmt: skip
            solid, dashed = Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine
            for level, style in ((bias, solid), (lower, dashed), (upper, dashed)):
                line = pg.InfiniteLine(level, angle=0, pen=pg.mkPen(colour, width=1, style=style))
                self.plot.addItem(line)

    def reason(self) -> str:
        return self.reason_edit.text().strip()

    def refusal(self) -> str | None:
        return promotion_refusal(self.report, self.reason())

    def _update(self) -> None:
        refusal = promotion_refusal(self.report, "")
        self.reason_edit.setVisible(refusal is not None)
        self.refusal_label.setText(refusal or "The model may be used.")
        self.use_button.setEnabled(self.refusal() is None)


class PromotionController(QObject):
    """Runs the comparison off the UI thread, shows it, and records promotions."""

    modelChosen = Signal(object)  # Path of the model to measure with
    statusMessage = Signal(str)
    errorMessage = Signal(str)
    historyChanged = Signal()

    def __init__(self, parent: QWidget, history_folder: Callable[[], Path]) -> None:
        super().__init__(parent)
        self._parent, self._history_folder = parent, history_folder
        self.runner: Callable[[ComparisonRequest], tuple[dict, dict]] = run_comparison
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.signals = _JobSignals(self)
        self.signals.done.connect(self._on_compared)
        self.signals.failed.connect(self._on_failed)
        self.dialog: PromotionDialog | None = None
        self._run: RunSummary | None = None
        self._current: Path | None = None

    def history(self) -> ModelHistory:
        return ModelHistory(self._history_folder() / HISTORY_FILE)

    def busy(self) -> bool:
        return self._run is not None

    def propose(self, run: RunSummary, current: Path | None, device: str = "auto") -> None:
        """Compare the run's model with `current` in the background, then show the dialog."""
        if self.busy():
            self.errorMessage.emit("A comparison is already going.")
            return
        self._run, self._current = run, current
        if current is None:  # nothing to compare with: the dialog asks for a reason
            self._show(None, {})
            return
        saved = saved_comparison(run, current)
        if saved is not None:  # the adapt run compared them already, on its held-out frames
            self._show(*saved)
            return
        self.statusMessage.emit(f"Comparing {run.name}'s model with the model in use…")
        request = ComparisonRequest(Path(run.model_path), Path(current), run.folder, device)
        self.pool.start(_ComparisonJob(self.runner, request, self.signals))

    def _on_failed(self, message: str) -> None:
        self._run = None
        self.errorMessage.emit(f"The comparison failed: {message}")

    def _on_compared(self, report: dict, data: dict) -> None:
        self._show(report, data)

    def _show(self, report: dict | None, data: dict) -> None:
        run = self._run
        try:
            self.dialog = PromotionDialog(run.name, report, self._parent)
        except Exception:
            self._run = None  # not stuck "busy" after a failure to show the comparison
            raise
        self.dialog.accepted.connect(lambda: self._promote(run, report, data))
        self.dialog.finished.connect(self._end)
        self.dialog.show()

    def _end(self, *_args) -> None:
        self._run = None

    def _promote(self, run: RunSummary, report: dict | None, data: dict) -> None:
        from ..core.atomic import atomic_write

        reason = self.dialog.reason() if self.dialog else ""
        if promotion_refusal(report, reason) is not None:
            return  # the button was disabled; nothing to do
        try:
            if report is not None:
                with atomic_write(run.folder / COMPARISON_FILE, "w", encoding="utf-8") as out:
                    json.dump(report, out, indent=2)
            digest = None if report is None else comparison_digest(report)
            parent = None if self._current is None else str(self._current)
            self.history().promote(run.model_path, parent, _jsonable(data), digest, reason)
        except (OSError, ModelHistoryError) as error:
            self.errorMessage.emit(f"The model is not used: {describe_error(error)}")
            return
        self.historyChanged.emit()
        self.modelChosen.emit(Path(run.model_path))
        self.statusMessage.emit(f"Measuring with {run.name}'s model from now on")

    def previous_model(self) -> Path | None:
        try:
            return self.history().previous_model()
        except ModelHistoryError:
            return None

    def use_previous(self) -> Path | None:
        """Put the previous model back in use; its path, or None (and a message) if none."""
        try:
            entry = self.history().back_to_previous()
        except (OSError, ModelHistoryError) as error:
            self.errorMessage.emit(describe_error(error))
            return None
        if entry is None:
            self.errorMessage.emit("There is no previous model to go back to.")
            return None
        self.historyChanged.emit()
        self.modelChosen.emit(Path(entry.model))
        self.statusMessage.emit(f"Measuring with the previous model {Path(entry.model).name}")
        return Path(entry.model)


def saved_comparison(run: RunSummary, current: Path) -> tuple[dict, dict] | None:
    """(report, the run's data settings) from the run's comparison.json when it compares this
    run's model with `current` (written by `train --adapt`); None otherwise."""
    from ..core.run_folder import RunFileError, RunFolder

    try:
        report = json.loads((run.folder / COMPARISON_FILE).read_text(encoding="utf-8"))
        same = Path(report["candidate_model"]).resolve() == Path(run.model_path).resolve()
        same = same and Path(report["current_model"]).resolve() == Path(current).resolve()
        saved = RunFolder(run.folder).read_run_file()
    except (OSError, ValueError, KeyError, TypeError, RunFileError):
        return None
    if not same or not {"verdict", "frames_scored", "current", "candidate"} <= report.keys():
        return None
    return report, {} if saved is None else saved.data.to_dict()


def _jsonable(data: dict) -> dict:
    return {k: v if isinstance(v, (int, float, str, bool, type(None), list)) else str(v)
            for k, v in data.items()}  # fmt: skip
