"""`hc-studio train --adapt`: start from the model in use, hold frames out, end with the verdict."""

from __future__ import annotations

import argparse
import json

from hc_studio.core.events import Error, Status
from hc_studio.core.run_folder import RunFolder
from test_train_command import of_type, train


def test_adapt_ends_with_the_comparison_on_the_held_out_frames(
    capsys, phantom_labelled, phantom_unlabelled, tmp_path
) -> None:
    base = ["--labeled", str(phantom_labelled), "--image-size", "64", "96", "--batch-size", "2"]
    first = tmp_path / "in_use"
    assert (
        train(capsys, *base, "--iterations", "2", "--val-every", "2", "--out", str(first))[0] == 0
    )
    adapted = tmp_path / "adapted"
    code, events, err = train(
        capsys, *base, "--iterations", "1", "--val-fraction", "0.3", "--adapt",
        "--unlabeled", str(phantom_unlabelled),
        "--init", str(RunFolder(first).model_file), "--out", str(adapted),
    )  # fmt: skip
    assert (adapted / "comparison.json").is_file(), err[-2000:]
    report = json.loads((adapted / "comparison.json").read_text())
    assert report["current_model"] == str(RunFolder(first).model_file)
    assert report["frames"] == 3  # the validation share of ten patients, not the training frames
    assert report["verdict"] == "too few frames" and code == 0
    saved = json.loads(RunFolder(adapted).run_file.read_text())["settings"]
    assert saved["iterations"] == 1  # given, so not the adapt default
    said = [event.message for event in of_type(events, Status)]
    assert any(m.startswith("comparing the new model with model.onnx on 3 held-out") for m in said)
    assert "verdict: too few frames" in said


def test_adapt_refuses_to_run_without_held_out_frames(capsys, phantom_labelled, tmp_path) -> None:
    code, events, _ = train(
        capsys, "--labeled", str(phantom_labelled), "--val-fraction", "0", "--adapt",
        "--init", str(tmp_path / "model.onnx"), "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code != 0 and "needs held-out frames" in of_type(events, Error)[-1].message


def test_adapt_defaults_fill_only_what_was_not_given(tmp_path) -> None:
    from hc_studio.core.training.adapt import ADAPT_DEFAULTS, resolve_init

    args = argparse.Namespace(adapt=True, resume=False, init=tmp_path / "in_use.onnx", iterations=5)
    resolve_init(args)
    assert (args.method, args.iterations, args.batch_size) == ("supervised", 5, 4)
    assert ADAPT_DEFAULTS["iterations"] == 700
