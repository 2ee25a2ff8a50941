"""`hc-studio train --adapt`: start from the model in use, hold frames out, end with the verdict."""

from __future__ import annotations

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
    assert saved["method"] == "ersr"  # the adapt default, as measured; --iterations was given
    assert saved["iterations"] == 1
    said = [event.message for event in of_type(events, Status)]
    assert any(m.startswith("comparing the new model with model.onnx on 3 held-out") for m in said)
    assert "verdict: too few frames" in said


def test_adapt_refuses_to_run_without_held_out_frames(capsys, phantom_labelled, tmp_path) -> None:
    code, events, _ = train(
        capsys, "--labeled", str(phantom_labelled), "--val-fraction", "0", "--adapt",
        "--init", str(tmp_path / "model.onnx"), "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code != 0 and "needs held-out frames" in of_type(events, Error)[-1].message
