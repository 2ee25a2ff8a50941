"""The Train tab's state without Qt: form -> settings and arguments, live run, runs list rows."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from hc_studio.core.events import (
    Done,
    Error,
    Fold,
    ImportProblemEvent,
    Progress,
    Start,
    Validation,
)
from hc_studio.core.run_folder import RunSummary
from hc_studio.core.training_session import (
    LiveRun,
    TrainForm,
    finished_state,
    format_duration,
    new_run_dir,
    resume_arguments,
    run_row,
    short_path,
)
from hc_studio.core.training_settings import (
    DataSettings,
    TrainSettings,
    add_settings_arguments,
    settings_from_args,
)


def test_the_form_gives_settings_and_the_arguments_that_mean_them(tmp_path: Path) -> None:
    labelled, unlabelled = tmp_path / "L", tmp_path / "U"
    labelled.mkdir(), unlabelled.mkdir()
    form = TrainForm(
        labelled=str(labelled), unlabelled=str(unlabelled), method="mean-teacher",
        labelled_fraction=0.25, iterations=30, batch_size=4, image_size=(64, 96),
        init_weights=tmp_path / "m.onnx",
    )  # fmt: skip
    assert form.problem() is None
    settings, data = form.settings()
    arguments = form.arguments(tmp_path / "run")
    # The train command's own parser reads the arguments back into the same settings.
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, TrainSettings)
    add_settings_arguments(parser, DataSettings)
    for option in ("--device", "--out", "--init"):
        parser.add_argument(option)
    args = parser.parse_args(arguments)
    assert settings_from_args(TrainSettings, args) == settings
    assert settings_from_args(DataSettings, args) == data
    assert (args.device, args.out, args.init) == (
        "auto",
        str(tmp_path / "run"),
        str(tmp_path / "m.onnx"),
    )
    assert resume_arguments(tmp_path, "cpu") == [
        "--out",
        str(tmp_path),
        "--resume",
        "--device",
        "cpu",
    ]


def test_the_form_defaults_come_from_the_settings_and_problems_are_words(tmp_path: Path) -> None:
    form = TrainForm()
    assert (form.batch_size, form.image_size) == (
        TrainSettings().batch_size,
        TrainSettings().image_size,
    )
    assert form.problem() == "Choose the folder of labelled frames first."
    form = TrainForm(labelled=str(tmp_path), unlabelled=str(tmp_path / "gone"))
    assert form.problem() == "gone: the unlabelled folder is not a folder"


def test_new_run_folders_are_safe_and_unique(tmp_path: Path) -> None:
    first = new_run_dir(tmp_path, "my run/1", "ersr")
    assert first.name == "my_run_1"
    first.mkdir()
    assert new_run_dir(tmp_path, "my run/1", "ersr").name == "my_run_1-2"
    assert new_run_dir(tmp_path, "", "cad", now=0).name.endswith("-cad")


def test_the_live_run_folds_events_into_what_the_tab_shows() -> None:
    run = LiveRun()
    run.apply(Start(method="mean-teacher", total_iterations=10, counts={"labelled": 3}))
    assert run.headline == "mean-teacher: 3 labelled"
    run.apply(Progress(iteration=2, total_iterations=10, losses={"loss": 0.5, "weight": 0.1,
                                                                 "sup": float("nan")},
                       images_per_s=4.0, eta_s=75, stage="warmup"))  # fmt: skip
    assert run.losses == {"loss": ([2], [0.5])}  # no ramp factor, no NaN
    assert run.eta_text == "ETA 1 min 15 s, 4.0 images/s"
    assert run.headline == "Iteration 2 of 10 (warm-up)" and run.iteration == 2
    run.apply(Validation(iteration=2, dice=0.8, hc_mae_mm=3.0))
    run.apply(ImportProblemEvent(path="/x/a.png", problem="unreadable"))
    assert run.validation == [(2, 0.8, 3.0)] and run.import_problems == ["a.png: unreadable"]
    run.apply(Done(iteration=4, stopped_early=True, best_dice=0.8, best_hc_mae_mm=3.0))
    assert run.state == "stopped" and run.iteration == 4 and run.eta_text == ""
    assert run.headline == "Stopped at iteration 4: best Dice 0.8000, HC error 3.00 mm"
    run.apply(Error(message="out of memory"))
    assert run.state == "failed" and run.headline == "Failed: out of memory"


def test_the_live_run_shows_the_cross_validation_folds_after_the_model() -> None:
    run = LiveRun()
    run.apply(Start(method="supervised", total_iterations=4, counts={"labelled": 50}))
    run.apply(Progress(iteration=4, total_iterations=4, losses={"loss": 0.5}))
    run.apply(Done(iteration=4, stopped_early=False, best_dice=None))
    run.apply(Fold(fold=2, folds=5, stage="training", frames=10))
    assert run.headline == "Fold 2/5: training without its 10 frames"
    run.apply(Progress(iteration=3, total_iterations=4, losses={"loss": 0.9}))
    assert run.headline == "Fold 2/5: iteration 3 of 4" and run.iteration == 3
    assert run.losses == {"loss": ([4], [0.5])}  # a fold's losses are not the run's curve
    run.apply(Fold(fold=2, folds=5, stage="scored", frames=10, dice_candidate=0.9,
                   dice_current=0.85))  # fmt: skip
    assert run.headline == "Fold 2/5 judged: Dice 0.9000 (model in use 0.8500) on 10 frames"


def test_the_end_of_the_process_and_the_runs_list_in_words(tmp_path: Path) -> None:
    assert finished_state("done", 0) == ("done", None)
    assert finished_state("", 0) == ("stopped", None)
    state, message = finished_state("", 3)
    assert state == "failed" and "code 3" in message
    summary = RunSummary(tmp_path / "r", "ersr", "done", 5, 10, 0.91234, None, 2.5, None)
    assert run_row(summary) == ["r", "ersr", "done", "5 / 10", "0.9123", "", "2.50"]
    assert run_row(summary, running=True)[2] == "running"
    assert format_duration(3725) == "1 h 02 min" and format_duration(None) == "–"
    assert short_path(Path("/home/someone/HC Studio/runs")) == "…/HC Studio/runs"


def test_the_session_imports_neither_qt_nor_torch() -> None:
    code = (
        "import sys, hc_studio.core.training_session; "
        "bad = [m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_device_probe_answer_in_words() -> None:
    from hc_studio.core.training_session import describe_device_probe

    assert describe_device_probe('noise\n{"cuda": true, "name": "H200"}\n') == (
        "CUDA available: H200",
        "H200",
    )
    assert describe_device_probe('{"cuda": false}')[0].startswith("No CUDA GPU found")
    for output in ("", "Traceback ...\nModuleNotFoundError: torch", "[1]"):
        assert describe_device_probe(output) == (
            "PyTorch is not installed: training is not available",
            None,
        )


def test_fine_tuning_the_model_in_use_is_the_adapt_flow(tmp_path: Path) -> None:
    labelled = tmp_path / "L"
    labelled.mkdir()
    form = TrainForm(labelled=str(labelled), init_weights=tmp_path / "in_use.onnx", adapt=True)
    assert form.arguments(tmp_path / "run")[-3:] == [
        "--init",
        str(tmp_path / "in_use.onnx"),
        "--adapt",
    ]
    checkpoint = TrainForm(labelled=str(labelled), init_weights=tmp_path / "last.pt", adapt=True)
    assert "--adapt" not in checkpoint.arguments(tmp_path / "run")  # nothing to compare with
    assert "--adapt" not in TrainForm(labelled=str(labelled), adapt=True).arguments(tmp_path)


def test_the_promotion_table_says_how_the_frames_were_judged() -> None:
    from hc_studio.core.comparison import FrameScores, compare_scores
    from hc_studio.core.training_session import comparison_rows

    frames = [FrameScores(f"{n}.png", str(n), 0.8 + n / 100) for n in range(5)]
    report = compare_scores(frames, frames, samples=10)
    assert comparison_rows(report)[0] == ["Frames judged", "5", "5", ""]
    report["judged_by"] = "5-fold cross-validation"
    assert comparison_rows(report)[0] == ["Frames judged", "5", "5", "5-fold cross-validation"]
