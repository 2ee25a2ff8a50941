"""'Use this model': the comparison in a worker, its table and plot, refusal, override, history."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from hc_studio.core.comparison import FrameScores, compare_scores

pytestmark = pytest.mark.qt


@pytest.fixture(autouse=True)
def no_modal_warnings(monkeypatch) -> list[str]:
    """QMessageBox.warning would block a test: its texts are collected instead."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append(text))
    return shown


def run_folder(tab, name: str) -> Path:
    """A finished, validated run with a model file."""
    from hc_studio.core.events import Done, EventWriter, Start, Validation
    from hc_studio.core.run_folder import RunFolder
    from hc_studio.core.training_settings import DataSettings, TrainSettings

    run = RunFolder(tab.settings.runs_folder() / name)
    writer = EventWriter(run.events_file, stream=None)
    for event in (
        Start(method="ersr", total_iterations=10),
        Validation(iteration=10, dice=0.9, best=True),
        Done(iteration=10, best_dice=0.9),
    ):
        writer.emit(event)
    writer.close()
    run.write_run_file(TrainSettings(), DataSettings(labelled_dir=Path("clinic"), mask_label=2))
    run.model_file.write_bytes(b"onnx")
    return run.path


def fake_report(shift: float, frames: int = 30, calibrated: bool = True) -> dict:
    rng = np.random.default_rng(0)
    current, candidate = [], []
    for i in range(frames):
        dice, ref = float(rng.uniform(0.8, 0.9)), 150.0 + 4 * i
        hc = (ref + 2.0, ref) if calibrated else (None, None)
        current.append(FrameScores(f"f{i}.png", f"p{i}", dice, None, *hc))
        moved = float(dice + shift + rng.normal(0, 0.005))
        candidate.append(FrameScores(f"f{i}.png", f"p{i}", moved, None, *hc))
    return compare_scores(candidate, current, samples=300)


class FakeComparison:
    """Stands in for the comparison of two ONNX models; notes the thread it ran on."""

    def __init__(self, report: dict) -> None:
        self.report, self.requests, self.threads = report, [], []

    def __call__(self, request):
        self.requests.append(request)
        self.threads.append(threading.current_thread())
        return self.report, {"labelled_dir": "clinic", "mask_label": 2}


def propose(qtbot, tab, name: str, report: dict) -> tuple[Path, FakeComparison]:
    folder = run_folder(tab, name)
    fake = FakeComparison(report)
    tab.promotion.runner = fake
    tab.refresh_runs()
    tab.runs_table.selectRow(next(i for i, r in enumerate(tab._runs) if r.folder == folder))
    errors = []
    tab.errorMessage.connect(errors.append)
    tab.use_selected_model()
    qtbot.waitUntil(lambda: errors or tab.promotion.dialog is not None, timeout=20000)
    assert errors == []
    qtbot.waitUntil(
        lambda: tab.promotion.dialog is not None and tab.promotion.dialog.isVisible(), timeout=20000
    )
    return folder, fake


def test_a_better_model_is_shown_compared_and_used(qtbot, window, no_modal_warnings) -> None:
    tab = window.train_tab
    before = window.current_model_path()
    folder, fake = propose(qtbot, tab, "better", fake_report(+0.04))
    assert no_modal_warnings == []
    assert fake.threads[0] is not threading.main_thread()  # never on the UI thread
    assert fake.requests[0].candidate == folder / "model.onnx"
    assert fake.requests[0].current == before
    dialog = tab.promotion.dialog
    assert "better" in dialog.verdict_label.text()
    cells = {dialog.table.item(r, 0).text(): r for r in range(dialog.table.rowCount())}
    assert {"Dice (mean)", "HC error (mm)", "HC bias [limits] (mm)"} <= cells.keys()
    difference = dialog.table.item(cells["Dice (mean)"], 3).text()
    assert difference.startswith("+0.04") and "[" in difference
    assert [s[0] for s in dialog.plot_series] == ["model in use", "candidate"]
    assert dialog.use_button.isEnabled() and not dialog.reason_edit.isVisible()
    with qtbot.waitSignal(tab.modelChosen) as chosen:
        dialog.use_button.click()
    assert chosen.args == [folder / "model.onnx"]
    assert window.current_model_path() == folder / "model.onnx"
    history = tab.promotion.history()
    entry = history.current()
    assert entry.model == str(folder / "model.onnx") and entry.parent == str(before)
    assert entry.comparison["verdict"] == "better" and entry.data["mask_label"] == 2
    assert json.loads((folder / "comparison.json").read_text())["verdict"] == "better"
    # the previous model is one click away
    assert tab.previous_model_button.isEnabled()
    with qtbot.waitSignal(tab.modelChosen) as back:
        tab.previous_model_button.click()
    assert back.args == [before] and window.current_model_path() == before
    assert history.current().reason == "back to the previous model"


@pytest.mark.parametrize(
    "report, word",
    [(fake_report(-0.04), "worse"), (fake_report(+0.04, frames=8), "too few frames")],
)
def test_worse_or_too_few_frames_is_refused_until_a_reason_is_typed(
    qtbot, window, report, word
) -> None:
    tab = window.train_tab
    before = window.current_model_path()
    folder, _ = propose(qtbot, tab, "candidate", report)
    dialog = tab.promotion.dialog
    assert word in dialog.verdict_label.text()
    assert not dialog.use_button.isEnabled() and dialog.reason_edit.isVisible()
    assert "give a reason" in dialog.refusal_label.text()
    dialog.reason_edit.setText("   ")
    assert not dialog.use_button.isEnabled()
    with qtbot.assertNotEmitted(tab.modelChosen):
        dialog.cancel_button.click()
    assert window.current_model_path() == before and tab.promotion.history().current() is None
    # asked again, with a reason
    tab.use_selected_model()
    qtbot.waitUntil(lambda: tab.promotion.dialog is not dialog and tab.promotion.dialog.isVisible())
    dialog = tab.promotion.dialog
    dialog.reason_edit.setText("the reference annotations of this clinic are being redone")
    assert dialog.use_button.isEnabled()
    with qtbot.waitSignal(tab.modelChosen):
        dialog.use_button.click()
    entry = tab.promotion.history().current()
    assert (
        entry.reason.startswith("the reference annotations") and entry.comparison["verdict"] == word
    )


def test_uncalibrated_frames_plot_the_two_models_dice(qtbot, window) -> None:
    tab = window.train_tab
    propose(qtbot, tab, "pixels", fake_report(+0.04, calibrated=False))
    dialog = tab.promotion.dialog
    labels = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert "HC error (mm)" not in labels
    assert [s[0] for s in dialog.plot_series] == ["candidate - model in use"]
    assert len(dialog.plot_series[0][1]) == 30


def test_a_failed_comparison_says_why_and_uses_nothing(qtbot, window) -> None:
    tab = window.train_tab
    run_folder(tab, "broken")

    def failing(request):
        raise ValueError("broken held no labelled frames out to judge it on")

    tab.promotion.runner = failing
    tab.refresh_runs()
    tab.runs_table.selectRow(0)
    with qtbot.waitSignal(tab.errorMessage) as error, qtbot.assertNotEmitted(tab.modelChosen):
        tab.use_selected_model()
    assert "held no labelled frames out" in error.args[0]
    assert not tab.promotion.busy()


def test_the_real_comparison_judges_on_the_runs_held_out_frames(tmp_path, tiny_onnx_model) -> None:
    import cv2
    from hc_studio.app.promotion import ComparisonRequest, run_comparison
    from hc_studio.core.phantom import make_phantom_batch
    from hc_studio.core.run_folder import RunFolder
    from hc_studio.core.training_settings import DataSettings, TrainSettings

    labelled = tmp_path / "clinic"
    for sub in ("images", "masks"):
        (labelled / sub).mkdir(parents=True)
    for i, phantom in enumerate(make_phantom_batch(6, shape=(96, 144), seed=3)):
        cv2.imwrite(str(labelled / "images" / f"p{i}.png"), (phantom.image * 255).astype(np.uint8))
        cv2.imwrite(str(labelled / "masks" / f"p{i}.png"), phantom.mask.astype(np.uint8) * 255)
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.write_run_file(TrainSettings(seed=1), DataSettings(labelled_dir=labelled, val_fraction=0.5))
    request = ComparisonRequest(tiny_onnx_model, tiny_onnx_model, run.path, "cpu")
    report, data = run_comparison(request)
    assert report["frames"] == 3  # half of six patients held out, as the trainer split them
    assert report["verdict"] == "too few frames" and data["val_fraction"] == 0.5


def test_the_adapt_runs_own_comparison_is_shown_without_computing_it_again(qtbot, window) -> None:
    tab = window.train_tab
    current = window.current_model_path()
    folder = run_folder(tab, "adapted")
    report = fake_report(+0.04)
    report.update(candidate_model=str(folder / "model.onnx"), current_model=str(current))
    (folder / "comparison.json").write_text(json.dumps(report))

    def not_again(request):
        raise AssertionError("the comparison was computed again")

    tab.promotion.runner = not_again
    tab.refresh_runs()
    tab.runs_table.selectRow(0)
    tab.use_selected_model()
    assert (
        tab.promotion.dialog is not None and "better" in tab.promotion.dialog.verdict_label.text()
    )
    tab.promotion.dialog.reject()
    # against another model in use, the saved report does not count
    (folder / "comparison.json").write_text(json.dumps({**report, "current_model": "other.onnx"}))
    errors = []
    tab.errorMessage.connect(errors.append)
    tab.use_selected_model()
    qtbot.waitUntil(lambda: bool(errors))
    assert "computed again" in errors[0]


def test_the_tab_fine_tunes_the_model_in_use_as_the_adapt_flow(window) -> None:
    tab = window.train_tab
    tab.init_combo.setCurrentIndex(tab.init_combo.findData("current"))
    assert tab.form().adapt and tab.form().init_weights == window.current_model_path()
    tab.init_combo.setCurrentIndex(tab.init_combo.findData("scratch"))
    assert not tab.form().adapt
