"""The Train tab: a run as a child process, live events, stop, resume, runs list, model choice."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hc_studio.core.phantom import make_phantom_batch

pytestmark = pytest.mark.qt

FAKE_TRAINER = Path(__file__).with_name("fake_trainer.py")


def fake_command(extra: list[str] | None = None):
    def build(arguments):
        return sys.executable, [str(FAKE_TRAINER), *arguments, *(extra or [])]

    return build


@pytest.fixture
def phantom_folders(tmp_path: Path) -> tuple[Path, Path]:
    """(labelled folder with images/ and masks/, unlabelled folder) of small phantoms."""
    labelled, unlabelled = tmp_path / "labelled", tmp_path / "unlabelled"
    for sub in ("images", "masks"):
        (labelled / sub).mkdir(parents=True)
    unlabelled.mkdir()
    for i, phantom in enumerate(make_phantom_batch(6, shape=(96, 144), seed=3)):
        cv2.imwrite(str(labelled / "images" / f"p{i}.png"), (phantom.image * 255).astype(np.uint8))
        cv2.imwrite(
            str(labelled / "masks" / f"p{i}.png"), (phantom.mask > 0).astype(np.uint8) * 255
        )
    for i, phantom in enumerate(make_phantom_batch(2, shape=(96, 144), seed=4)):
        cv2.imwrite(str(unlabelled / f"u{i}.png"), (phantom.image * 255).astype(np.uint8))
    return labelled, unlabelled


@pytest.fixture
def train_tab(window, phantom_folders):
    tab = window.train_tab
    labelled, unlabelled = phantom_folders
    tab.labelled_edit.setText(str(labelled))
    tab.unlabelled_edit.setText(str(unlabelled))
    return tab


def test_method_list_comes_from_the_registry(train_tab):
    from hc_studio.core.training.methods import REGISTRY

    names = [train_tab.method_combo.itemData(i) for i in range(train_tab.method_combo.count())]
    assert names == list(REGISTRY)
    train_tab.method_combo.setCurrentIndex(names.index("mean-teacher"))
    assert train_tab.method_description.text() == REGISTRY["mean-teacher"].description


def test_import_summary_and_problems(qtbot, train_tab, phantom_folders):
    labelled, _ = phantom_folders
    (labelled / "images" / "orphan.png").write_bytes(b"no mask for this one")
    with qtbot.waitSignal(train_tab._import_signals.done, timeout=20000):
        train_tab.import_folder("labelled")
    assert "6 labelled frames" in train_tab.labelled_summary.text()
    problems = [train_tab.problems.item(i).text() for i in range(train_tab.problems.count())]
    assert any("orphan.png" in p for p in problems)


def test_stop_in_the_middle_then_resume(qtbot, train_tab, app_settings):
    train_tab.command_builder = fake_command()
    train_tab.iterations.setValue(200)
    train_tab.start_run()
    assert train_tab.is_running() and not train_tab.start_button.isEnabled()
    qtbot.waitUntil(lambda: train_tab.progress.value() >= 3, timeout=20000)
    assert train_tab.plots.loss_data["loss"][0][:3] == [1, 2, 3]
    assert "weight" not in train_tab.plots.loss_data  # a ramp factor is not a loss
    assert train_tab.eta_label.text().startswith("ETA")
    assert train_tab.runs_table.item(0, 2).text() == "running"
    shown = int(train_tab.runs_table.item(0, 3).text().split(" / ")[0])
    assert shown >= 3
    with qtbot.waitSignal(train_tab.runFinished, timeout=20000) as finished:
        train_tab.stop_run()
    assert finished.args == ["stopped"]
    run = train_tab.selected_run()
    assert run.state == "stopped" and 3 <= run.iteration < 200 and run.resumable

    train_tab.command_builder = fake_command(["--iterations", "12"])
    with qtbot.waitSignal(train_tab.runFinished, timeout=20000) as finished:
        assert train_tab.resume_selected()
    assert finished.args == ["done"]
    log = train_tab.log.toPlainText()
    assert "--resume" in log and f"--out {run.folder}" in log


def test_a_child_that_ignores_stop_is_terminated(qtbot, train_tab):
    train_tab.command_builder = fake_command(["--ignore-stop"])
    train_tab.process.stop_grace_ms = 300
    train_tab.iterations.setValue(2000)
    train_tab.start_run()
    qtbot.waitUntil(lambda: train_tab.progress.value() >= 1, timeout=20000)
    with qtbot.waitSignal(train_tab.process.finished, timeout=20000):
        train_tab.stop_run()
    assert not train_tab.is_running()
    assert "terminating" in train_tab.log.toPlainText()


def test_closing_with_a_run_going_asks_first(qtbot, train_tab):
    train_tab.command_builder = fake_command()
    train_tab.iterations.setValue(2000)
    train_tab.start_run()
    qtbot.waitUntil(lambda: train_tab.progress.value() >= 1, timeout=20000)
    assert train_tab.confirm_close(ask=lambda: False) is False
    assert train_tab.is_running()
    assert train_tab.confirm_close(ask=lambda: True) is True
    assert not train_tab.is_running()


def test_real_trainer_runs_to_done_and_its_model_can_be_used(qtbot, window, train_tab):
    """`hc-studio train` itself: 4 iterations at 32x48 on phantoms, then "use this model"."""
    pytest.importorskip("torch")
    train_tab.iterations.setValue(4)
    train_tab.batch_size.setValue(2)
    train_tab.height_spin.setValue(32)
    train_tab.width_spin.setValue(48)
    train_tab.device_combo.setCurrentIndex(train_tab.device_combo.findData("cpu"))
    train_tab.init_combo.setCurrentIndex(train_tab.init_combo.findData("scratch"))
    with qtbot.waitSignal(train_tab.runFinished, timeout=120000) as finished:
        assert train_tab.start_run()
    assert finished.args == ["done"], train_tab.log.toPlainText()[-2000:]
    run = train_tab.selected_run()
    assert run.state == "done" and run.iteration == 4 and run.model_path is not None
    assert train_tab.plots.loss_data  # curves were drawn from the live events
    train_tab.use_selected_model()  # compared with the model in use on the held-out phantoms
    qtbot.waitUntil(lambda: train_tab.promotion.dialog is not None, timeout=60000)
    dialog = train_tab.promotion.dialog
    assert "too few frames" in dialog.verdict_label.text()  # a share of six phantoms
    assert not dialog.use_button.isEnabled()
    dialog.reason_edit.setText("a test of the whole path")
    with qtbot.waitSignal(train_tab.modelChosen):
        dialog.use_button.click()
    assert window.settings.model_path() == str(run.model_path)
    assert window.current_model_path() == run.model_path


def test_real_trainer_stops_on_the_stop_line(qtbot, train_tab):
    """The stop line reaches `hc-studio train`: it ends early, with a checkpoint to resume."""
    pytest.importorskip("torch")
    train_tab.iterations.setValue(10000)
    train_tab.batch_size.setValue(2)
    train_tab.height_spin.setValue(32)
    train_tab.width_spin.setValue(48)
    train_tab.device_combo.setCurrentIndex(train_tab.device_combo.findData("cpu"))
    train_tab.init_combo.setCurrentIndex(train_tab.init_combo.findData("scratch"))
    assert train_tab.start_run()
    qtbot.waitUntil(lambda: train_tab.progress.value() >= 1, timeout=120000)
    with qtbot.waitSignal(train_tab.runFinished, timeout=120000) as finished:
        train_tab.stop_run()
    assert finished.args == ["stopped"], train_tab.log.toPlainText()[-2000:]
    run = train_tab.selected_run()
    assert run.state == "stopped" and run.iteration < 10000 and run.resumable
    assert "terminating" not in train_tab.log.toPlainText()  # it stopped by itself


def _write_run(folder: Path, events, model: bool = True) -> None:
    from hc_studio.core.events import EventWriter
    from hc_studio.core.run_folder import RunFolder
    from hc_studio.core.training_settings import DataSettings, TrainSettings

    run = RunFolder(folder)
    writer = EventWriter(run.events_file, stream=None)
    for event in events:
        writer.emit(event)
    writer.close()
    run.write_run_file(TrainSettings(), DataSettings())
    if model:
        run.model_file.write_bytes(b"x")


@pytest.fixture
def warnings_shown(monkeypatch) -> list[str]:
    """QMessageBox.warning replaced: the texts it was asked to show."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append(text))
    return shown


@pytest.mark.parametrize(
    "name, ending, reason",
    [
        ("unvalidated", "done", "no validation figures"),
        ("stopped", "stopped", "did not finish"),
    ],
)
def test_use_this_model_refuses_a_run_without_validation_or_end(
    qtbot, window, train_tab, warnings_shown, name, ending, reason
):
    from hc_studio.core.events import Done, Start, Validation

    before = window.current_model_path()
    events = [Start(method="supervised", total_iterations=12)]
    if ending == "stopped":
        events += [
            Validation(iteration=6, dice=0.9, best=True),
            Done(iteration=6, stopped_early=True),
        ]
    else:
        events += [Done(iteration=12)]
    _write_run(train_tab.settings.runs_folder() / name, events)
    train_tab.refresh_runs()
    train_tab.runs_table.selectRow(0)
    with qtbot.assertNotEmitted(train_tab.modelChosen):
        train_tab.use_selected_model()
    assert len(warnings_shown) == 1 and reason in warnings_shown[0] and name in warnings_shown[0]
    assert window.current_model_path() == before


def test_use_this_model_compares_first_then_takes_a_finished_validated_run(
    qtbot, train_tab, warnings_shown
):
    from hc_studio.core.comparison import FrameScores, compare_scores
    from hc_studio.core.events import Done, Start, Validation

    folder = train_tab.settings.runs_folder() / "good"
    _write_run(folder, [
        Start(method="supervised", total_iterations=12),
        Validation(iteration=12, dice=0.9, best=True),
        Done(iteration=12, best_dice=0.9),
    ])  # fmt: skip
    frames = [FrameScores(f"f{i}", f"p{i}", 0.8 + 0.004 * i) for i in range(25)]
    better = [FrameScores(f.file, f.patient, f.dice + 0.05) for f in frames]
    train_tab.promotion.runner = lambda request: (compare_scores(better, frames), {})
    train_tab.refresh_runs()
    train_tab.runs_table.selectRow(0)
    with qtbot.waitSignal(train_tab.modelChosen) as chosen:
        train_tab.use_selected_model()
        qtbot.waitUntil(lambda: train_tab.promotion.dialog is not None)
        train_tab.promotion.dialog.use_button.click()
    assert chosen.args == [folder / "model.onnx"] and warnings_shown == []


def test_a_run_with_a_malformed_run_file_is_listed_as_unreadable(train_tab):
    from hc_studio.core.events import Done, Start
    from hc_studio.core.run_folder import RunFolder

    folder = train_tab.settings.runs_folder() / "broken"
    _write_run(folder, [Start(method="supervised"), Done(iteration=3, stopped_early=True)])
    RunFolder(folder).run_file.write_text('{"settings": 3')
    train_tab.refresh_runs()
    assert train_tab.runs_table.item(0, 2).text() == "unreadable"
    assert "run.json" in train_tab.runs_table.item(0, 0).toolTip()
    train_tab.runs_table.selectRow(0)
    assert not train_tab.resume_button.isEnabled()


def test_a_build_without_training_says_so_instead_of_offering_a_start(
    qtbot, app_settings, monkeypatch
):
    from hc_studio.app.train_tab import TrainTab
    from hc_studio.core import cli

    monkeypatch.setattr(cli, "training_unavailable", lambda: cli.NOT_IN_THIS_BUILD)
    tab = TrainTab(app_settings)
    qtbot.addWidget(tab, before_close_func=lambda t: t.shutdown())
    assert not tab.start_button.isEnabled()
    assert "not available in this build" in tab.device_label.text()
    with qtbot.waitSignal(tab.errorMessage) as message:
        assert tab.start_run() is False
    assert "not available in this build" in message.args[0]
