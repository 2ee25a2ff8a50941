"""`hc-studio train` end to end on phantom folders: events, errors, resume, export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hc_studio.core.cli import main
from hc_studio.core.events import (
    Checkpoint,
    Done,
    Error,
    ImportProblemEvent,
    Progress,
    Start,
    Validation,
    parse_event,
    read_events,
)
from hc_studio.core.run_folder import RunFolder

TINY_RUN = [
    "--image-size", "32", "48", "--width", "4", "--batch-size", "2", "--device", "cpu",
    "--threads", "1",
]  # fmt: skip


def train(capsys, *arguments: str) -> tuple[int, list, str]:
    """Run `hc-studio train` in this process: (exit code, stdout events, stderr)."""
    code = main(["train", *TINY_RUN, "--no-stdin", *arguments])
    captured = capsys.readouterr()
    events = [parse_event(line) for line in captured.out.splitlines()]
    return code, events, captured.err


def of_type(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_supervised_run_streams_progress_and_ends_with_done(capsys, phantom_labelled, tmp_path):
    run_dir = tmp_path / "run"
    code, events, _ = train(
        capsys, "--labeled", str(phantom_labelled), "--iterations", "4", "--out", str(run_dir)
    )
    assert code == 0
    start = of_type(events, Start)[0]
    assert start.counts["labelled"] + start.counts["validation"] == 10
    assert start.counts["validation"] >= 1
    assert [p.iteration for p in of_type(events, Progress)][-1] == 4
    assert of_type(events, Validation) and of_type(events, Checkpoint)
    done = events[-1]
    assert isinstance(done, Done) and not done.stopped_early and done.iteration == 4
    assert Path(done.onnx_path).is_file() and Path(done.best_checkpoint).is_file()
    # events.jsonl holds the same events as stdout
    logged = read_events(RunFolder(run_dir).events_file)
    assert [e.to_json() for e in logged] == [e.to_json() for e in events]


def test_mean_teacher_uses_the_unlabelled_folder(
    capsys, phantom_labelled, phantom_unlabelled, tmp_path
):
    code, events, _ = train(
        capsys,
        "--labeled", str(phantom_labelled),
        "--unlabeled", str(phantom_unlabelled),
        "--method", "mean-teacher",
        "--iterations", "3",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0
    assert of_type(events, Start)[0].counts["unlabelled"] == 6
    last_progress = of_type(events, Progress)[-1]
    assert last_progress.losses["unsup"] > 0 and last_progress.losses["weight"] > 0
    assert isinstance(events[-1], Done)


def test_labelled_fraction_moves_patients_to_the_unlabelled_stream(
    capsys, phantom_labelled, tmp_path
):
    code, events, _ = train(
        capsys,
        "--labeled", str(phantom_labelled),
        "--labeled-fraction", "0.5",
        "--val-fraction", "0.2",
        "--method", "mean-teacher",
        "--iterations", "1",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    counts = of_type(events, Start)[0].counts
    assert code == 0
    assert counts["validation"] == 2
    assert counts["labelled"] == 4 and counts["unlabelled"] == 4


def test_a_validation_folder_replaces_the_split(
    capsys, phantom_labelled, phantom_validation, tmp_path
):
    code, events, _ = train(
        capsys,
        "--labeled", str(phantom_labelled),
        "--val", str(phantom_validation),
        "--iterations", "1",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    counts = of_type(events, Start)[0].counts
    assert code == 0 and counts["labelled"] == 10 and counts["validation"] == 3
    assert of_type(events, Validation)[-1].frames == 3


def test_a_corrupt_image_is_reported_and_skipped(capsys, phantom_labelled, tmp_path):
    folder = tmp_path / "labelled"
    shutil.copytree(phantom_labelled, folder)
    (folder / "003_HC.png").write_bytes(b"this is not a png")
    code, events, _ = train(
        capsys, "--labeled", str(folder), "--iterations", "2", "--out", str(tmp_path / "run")
    )
    assert code == 0
    problems = of_type(events, ImportProblemEvent)
    assert any(Path(p.path).name == "003_HC.png" for p in problems)
    start = of_type(events, Start)[0]
    assert start.counts["labelled"] + start.counts["validation"] == 9
    assert isinstance(events[-1], Done)


def test_no_labelled_frame_is_an_error_event_without_traceback(
    capsys, phantom_unlabelled, tmp_path
):
    code, events, err = train(
        capsys, "--labeled", str(phantom_unlabelled), "--iterations", "2", "--out", str(tmp_path)
    )
    assert code != 0
    assert isinstance(events[-1], Error) and events[-1].message
    assert "Traceback" not in err


def test_unknown_method_is_an_error_listing_the_known_ones(capsys, phantom_labelled, tmp_path):
    code, events, _ = train(
        capsys, "--labeled", str(phantom_labelled), "--method", "nope", "--out", str(tmp_path)
    )
    assert code != 0
    assert "mean-teacher" in events[-1].message


def test_an_existing_run_is_not_overwritten_without_resume(capsys, phantom_labelled, tmp_path):
    arguments = ["--labeled", str(phantom_labelled), "--iterations", "1", "--out", str(tmp_path)]
    assert train(capsys, *arguments)[0] == 0
    code, events, _ = train(capsys, *arguments)
    assert code != 0 and "--resume" in events[-1].message


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(RunFolder(run_dir).last_checkpoint, weights_only=True)
    return {**state["model"]["state"], **{f"t.{k}": v for k, v in state["teacher"].items()}}


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    capsys, phantom_labelled, phantom_unlabelled, tmp_path
):
    arguments = [
        "--labeled", str(phantom_labelled),
        "--unlabeled", str(phantom_unlabelled),
        "--method", "mean-teacher",
        "--iterations", "6",
        "--val-every", "2",
    ]  # fmt: skip
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert train(capsys, *arguments, "--out", str(whole))[0] == 0
    code, events, _ = train(capsys, *arguments, "--out", str(parts), "--stop-after", "3")
    assert code == 0 and events[-1].stopped_early and events[-1].iteration == 3
    code, events, _ = train(capsys, "--out", str(parts), "--resume")
    assert code == 0 and of_type(events, Start)[0].start_iteration == 3
    assert events[-1].iteration == 6 and not events[-1].stopped_early
    expected, resumed = _weights(whole), _weights(parts)
    assert expected.keys() == resumed.keys()
    for key, value in expected.items():
        assert torch.equal(value, resumed[key]), key


def test_init_from_an_exported_model_starts_from_its_weights(capsys, phantom_labelled, tmp_path):
    first = tmp_path / "first"
    arguments = ["--labeled", str(phantom_labelled), "--iterations", "2", "--val-every", "2"]
    assert train(capsys, *arguments, "--out", str(first))[0] == 0
    second = tmp_path / "second"
    code, _, _ = train(
        capsys, *arguments, "--iterations", "1", "--lr", "0", "--out", str(second),
        "--init", str(RunFolder(first).model_file), "--no-augment",
    )  # fmt: skip
    assert code == 0
    best = RunFolder(first).best_checkpoint
    exported = torch.load(best, weights_only=True)["model"]["state"]
    after = torch.load(RunFolder(second).last_checkpoint, weights_only=True)["model"]["state"]
    # lr 0: the weights stay those of the init model (BatchNorm statistics move with the batch)
    for key, value in exported.items():
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, after[key]), key


def test_keep_snapshots_keeps_the_checkpoint_of_every_validation(
    capsys, phantom_labelled, tmp_path
):
    arguments = ["--labeled", str(phantom_labelled), "--iterations", "5", "--val-every", "2"]
    plain = tmp_path / "plain"
    assert train(capsys, *arguments, "--out", str(plain))[0] == 0
    assert sorted(p.name for p in RunFolder(plain).checkpoints.iterdir()) == ["best.pt", "last.pt"]

    kept = RunFolder(tmp_path / "kept")
    code, events, _ = train(capsys, *arguments, "--keep-snapshots", "--out", str(kept.path))
    assert code == 0
    # validations at 2 and 4, and the run's end at 5
    snapshots = [e for e in of_type(events, Checkpoint) if e.tag == "snapshot"]
    assert [(e.iteration, e.path) for e in snapshots] == [
        (i, str(kept.snapshot(i))) for i in (2, 4, 5)
    ]
    for event in snapshots:
        state = torch.load(event.path, weights_only=True)
        assert state["iteration"] == event.iteration
    last = torch.load(kept.last_checkpoint, weights_only=True)["model"]["state"]
    final = torch.load(kept.snapshot(5), weights_only=True)["model"]["state"]
    assert all(torch.equal(last[key], final[key]) for key in last)
    assert json.loads(kept.run_file.read_text())["settings"]["keep_snapshots"] is True


def test_run_file_records_settings_for_resume(capsys, phantom_labelled, tmp_path):
    train(capsys, "--labeled", str(phantom_labelled), "--iterations", "1", "--out", str(tmp_path))
    saved = json.loads(RunFolder(tmp_path).run_file.read_text())
    assert saved["settings"]["iterations"] == 1
    assert saved["data"]["labelled_dir"] == str(phantom_labelled)


def test_method_options_are_rejected_by_methods_without_them(capsys, phantom_labelled, tmp_path):
    code, events, _ = train(
        capsys, "--labeled", str(phantom_labelled), "--method", "supervised",
        "--set", "use_filter=false", "--out", str(tmp_path),
    )  # fmt: skip
    assert code != 0 and "known options" in events[-1].message


@pytest.mark.parametrize("flag", ["--no-filter", "--no-ellipse-refine", "--no-symmetry"])
def test_ersr_switches_are_not_generic_train_options(capsys, flag) -> None:
    # ERSR's ablations are fields of its Config: `--set use_filter=false`.
    with pytest.raises(SystemExit):
        main(["train", flag, "--out", "unused"])
    assert "unrecognized arguments" in capsys.readouterr().err


def _stopped_run(capsys, phantom_labelled, run_dir: Path) -> None:
    arguments = ["--labeled", str(phantom_labelled), "--iterations", "4", "--val-every", "2"]
    code, events, _ = train(capsys, *arguments, "--stop-after", "2", "--out", str(run_dir))
    assert code == 0 and events[-1].stopped_early and events[-1].iteration == 2


def test_resume_refuses_changed_settings_naming_saved_and_given_values(
    capsys, phantom_labelled, tmp_path
):
    _stopped_run(capsys, phantom_labelled, tmp_path)
    before = RunFolder(tmp_path).last_checkpoint.read_bytes()
    code, events, _ = train(
        capsys, "--out", str(tmp_path), "--resume", "--lr", "0.5", "--method", "mean-teacher"
    )
    message = events[-1].message
    assert code != 0 and isinstance(events[-1], Error)
    assert "--lr is 0.01 in run.json, 0.5 was given" in message
    assert "--method is supervised in run.json, mean-teacher was given" in message
    assert RunFolder(tmp_path).last_checkpoint.read_bytes() == before  # nothing trained


def test_resume_accepts_the_saved_value_and_applies_more_iterations(
    capsys, phantom_labelled, tmp_path
):
    _stopped_run(capsys, phantom_labelled, tmp_path)
    code, events, _ = train(
        capsys, "--out", str(tmp_path), "--resume", "--lr", "0.01", "--iterations", "6"
    )
    assert code == 0 and of_type(events, Start)[0].total_iterations == 6
    assert events[-1].iteration == 6 and not events[-1].stopped_early
    assert json.loads(RunFolder(tmp_path).run_file.read_text())["settings"]["iterations"] == 6


def test_resume_refuses_fewer_iterations_than_done(capsys, phantom_labelled, tmp_path):
    _stopped_run(capsys, phantom_labelled, tmp_path)
    code, events, _ = train(capsys, "--out", str(tmp_path), "--resume", "--iterations", "1")
    assert code != 0 and "already at iteration 2" in events[-1].message


@pytest.mark.parametrize(
    "content, problem",
    [("{", "not valid JSON"), ("[]", "expected a JSON object"), ('{"settings": {}}', "'data'"),
     ('{"settings": {"iterations": "many"}, "data": {}}', "iterations")],
)  # fmt: skip
def test_a_malformed_run_file_is_an_error_naming_it(
    capsys, phantom_labelled, tmp_path, content, problem
):
    _stopped_run(capsys, phantom_labelled, tmp_path)
    RunFolder(tmp_path).run_file.write_text(content)
    code, events, _ = train(capsys, "--out", str(tmp_path), "--resume")
    message = events[-1].message
    assert code != 0 and "run.json" in message and problem in message
    assert "KeyError" not in message and "internal error" not in message


def test_list_methods_prints_every_registered_method_without_torch() -> None:
    import json
    import subprocess
    import sys

    from hc_studio.core.training.methods import REGISTRY

    code = (
        "import sys; from hc_studio.core.cli import main; rc = main(['train', '--list-methods',"
        " '--json']); assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed = json.loads(done.stdout)
    assert [entry["name"] for entry in listed] == list(REGISTRY)
    assert all(entry["description"] for entry in listed)


def test_train_without_out_is_a_usage_error(capsys) -> None:
    assert main(["train", "--labeled", "x"]) == 2
    assert "--out" in capsys.readouterr().err


def _denormal_survives() -> bool:
    """Whether 1e-40 (a denormal float32) survives a multiplication."""
    return bool((torch.tensor([1e-40]) * 1.0).item() != 0.0)


def test_cpu_training_flushes_denormals_and_restores_them_after(
    capsys, monkeypatch, phantom_labelled, tmp_path
) -> None:
    """Denormal weights slow x86 arithmetic many times over; a CPU run flushes them to zero,
    and a run called in this process leaves torch as it found it."""
    from hc_studio.core.training.commands import train as train_command

    seen: list[bool] = []
    real_train = train_command._train

    def recording_train(*args, **kwargs):
        seen.append(_denormal_survives())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(train_command, "_train", recording_train)
    assert _denormal_survives()
    code, _, _ = train(
        capsys, "--labeled", str(phantom_labelled), "--iterations", "1", "--out", str(tmp_path)
    )
    assert code == 0
    assert seen == [False]
    assert _denormal_survives()
