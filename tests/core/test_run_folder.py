"""The run folder: its layout, run.json, and the summary the runs list shows (no Qt, no torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hc_studio.core.events import (
    Done,
    Error,
    EventWriter,
    Fold,
    Progress,
    Start,
    Validation,
)
from hc_studio.core.run_folder import (
    RunFileError,
    RunFolder,
    list_runs,
    summarise_run,
)
from hc_studio.core.training_settings import DataSettings, TrainSettings


def write_events(folder: Path, events) -> None:
    writer = EventWriter(RunFolder(folder).events_file, stream=None)
    for event in events:
        writer.emit(event)
    writer.close()


def write_settings(folder: Path) -> None:
    RunFolder(folder).write_run_file(TrainSettings(), DataSettings(labelled_dir=Path("x")))


START = Start(method="ersr", total_iterations=100)


def test_the_layout_has_one_owner(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    assert folder.run_file.name == "run.json" and folder.events_file.name == "events.jsonl"
    assert folder.model_file.name == "model.onnx"
    assert folder.last_checkpoint.parent == folder.checkpoints == folder.path / "checkpoints"
    assert RunFolder.of_checkpoint(folder.best_checkpoint) == folder
    assert RunFolder.of_checkpoint(tmp_path / "elsewhere.pt") is None
    assert folder.fold(2).path == folder.path / "folds" / "fold-2"


def test_run_summaries_from_events(tmp_path: Path) -> None:
    done_run, stopped_run, failed_run = (tmp_path / name for name in ("a", "b", "c"))
    write_events(done_run, [
        START,
        Progress(iteration=50, total_iterations=100),
        Validation(iteration=50, dice=0.9, hc_mae_mm=3.0, best=True),
        Validation(iteration=100, dice=0.8, hc_mae_mm=4.0, best=False),
        Done(iteration=100, best_dice=0.9, best_hc_mae_mm=3.0),
    ])  # fmt: skip
    RunFolder(done_run).model_file.write_bytes(b"x")
    write_events(
        stopped_run,
        [START, Progress(iteration=7, total_iterations=100), Done(iteration=7, stopped_early=True)],
    )
    write_settings(stopped_run)
    write_events(failed_run, [START, Error(message="out of memory")])

    done, stopped, failed = (summarise_run(f) for f in (done_run, stopped_run, failed_run))
    assert (done.state, done.dice, done.hc_mae_mm, done.iteration) == ("done", 0.9, 3.0, 100)
    assert done.model_path == done_run / "model.onnx" and not done.resumable
    assert (stopped.state, stopped.iteration, stopped.resumable) == ("stopped", 7, True)
    assert stopped.model_path is None
    assert (failed.state, failed.message) == ("failed", "out of memory")
    assert not failed.resumable  # no run.json: nothing to resume with
    assert summarise_run(tmp_path / "nothing") is None


def test_run_file_round_trip(tmp_path: Path) -> None:
    settings = TrainSettings(method="cad", iterations=12, method_options={"k": "v"})
    data = DataSettings(labelled_dir=Path("L"), val_fraction=0.3)
    RunFolder(tmp_path).write_run_file(settings, data)
    saved = RunFolder(tmp_path).read_run_file()
    assert (saved.settings, saved.data) == (settings, data)
    # the data object also carries what the loader read with, as older versions wrote it
    written = json.loads(RunFolder(tmp_path).run_file.read_text())["data"]
    assert written["image_size"] == [192, 288] and written["seed"] == 0
    assert RunFolder(tmp_path / "none").read_run_file() is None


@pytest.mark.parametrize(
    "content",
    ["{", "[]", '{"settings": {}}', '{"settings": [], "data": {}}',
     '{"settings": {"lr": "fast"}, "data": {}}', '{"settings": {}, "data": {"val_dir": 3}}'],
)  # fmt: skip
def test_a_malformed_run_file_names_the_file(tmp_path: Path, content: str) -> None:
    RunFolder(tmp_path).run_file.write_text(content)
    with pytest.raises(RunFileError, match="run.json"):
        RunFolder(tmp_path).read_run_file()


def test_a_run_with_a_malformed_run_file_is_listed_as_unreadable(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder in (good, bad):
        write_events(folder, [START, Done(iteration=7, stopped_early=True)])
        write_settings(folder)
    RunFolder(bad).run_file.write_text('{"settings": ')
    listed = {run.name: run for run in list_runs(tmp_path)}
    assert listed["good"].state == "stopped" and listed["good"].resumable
    assert listed["bad"].state == "unreadable" and not listed["bad"].resumable
    assert "run.json" in listed["bad"].message and "not valid JSON" in listed["bad"].message


def test_events_with_wrong_types_make_the_run_unreadable_not_a_crash(tmp_path: Path) -> None:
    RunFolder(tmp_path / "r").path.mkdir()
    RunFolder(tmp_path / "r").events_file.write_text(
        '{"event": "start", "method": "x"}\n{"event": "progress", "iteration": "many"}\n'
    )
    (summary,) = list_runs(tmp_path)
    assert summary.state == "unreadable" and "events.jsonl" in summary.message


def test_use_of_a_model_is_refused_without_validation_or_end(tmp_path: Path) -> None:
    def summary(events) -> object:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        write_events(folder, events)
        write_settings(folder)
        RunFolder(folder).model_file.write_bytes(b"x")
        return summarise_run(folder)

    validated = [START, Validation(iteration=10, dice=0.9, best=True)]
    assert summary([*validated, Done(iteration=100, best_dice=0.9)]).refusal_to_use() is None
    unvalidated = summary([START, Done(iteration=12)]).refusal_to_use()
    assert "no validation figures" in unvalidated
    stopped = summary([*validated, Done(iteration=10, stopped_early=True)]).refusal_to_use()
    assert "did not finish" in stopped and "iteration 10 of 100" in stopped
    # Cross-validated: the model (trained on all labelled frames) is judged by all its folds.
    folds = [Fold(fold=n, folds=2, stage=stage) for n in (1, 2) for stage in ("training", "scored")]
    assert summary([START, Done(iteration=100), *folds]).refusal_to_use() is None
    half = summary([START, Done(iteration=100), *folds[:3]]).refusal_to_use()
    assert "no validation figures" in half  # stopped in the last fold: not judged
    no_model = summarise_run(tmp_path / "0")
    RunFolder(no_model.folder).model_file.unlink()
    assert "no exported model" in summarise_run(no_model.folder).refusal_to_use()


def test_the_run_folder_imports_neither_torch_nor_qt() -> None:
    code = (
        "import sys, hc_studio.core.run_folder, hc_studio.core.training_settings; "
        "bad = [m for m in ('torch', 'PySide6') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
