"""`hc-studio train --adapt`: start from the model in use, hold frames out, end with the verdict
(on a held-out share when it holds enough frames, else by K-fold cross-validation)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from hc_studio.core.events import Error, Fold, Status
from hc_studio.core.run_folder import RunFolder, summarise_run
from hc_studio.core.training_session import held_out_frames
from hc_studio.core.training_settings import DataSettings
from test_train_command import of_type, train

BASE = ["--image-size", "32", "48", "--batch-size", "2"]


@pytest.fixture(scope="module")
def model_in_use(tmp_path_factory, phantom_labelled) -> Path:
    """A model to adapt: two iterations on the ten phantom frames."""
    import sys

    from hc_studio.core.cli import main

    out = tmp_path_factory.mktemp("in_use") / "run"
    code = main(
        ["train", "--width", "4", "--device", "cpu", "--threads", "1", "--no-stdin", *BASE,
         "--labeled", str(phantom_labelled), "--iterations", "2", "--out", str(out)]
    )  # fmt: skip
    sys.stdout.flush()
    assert code == 0
    return RunFolder(out).model_file


def _trained_on(fold: RunFolder) -> set[str]:
    """The labelled frames a fold's run trained on, from its frame cache."""
    with np.load(fold.cache_file) as cache:
        meta = json.loads(str(cache["meta"]))
    return {Path(info["path"]).name for info in meta["labelled_infos"]}


def test_adapt_with_enough_held_out_frames_judges_on_the_single_split(
    capsys, phantom_labelled_many, model_in_use, tmp_path
) -> None:
    adapted = tmp_path / "adapted"
    code, events, err = train(
        capsys, *BASE, "--labeled", str(phantom_labelled_many), "--iterations", "1",
        "--val-fraction", "0.5", "--adapt", "--init", str(model_in_use), "--out", str(adapted),
    )  # fmt: skip
    assert (adapted / "comparison.json").is_file(), err[-2000:]
    report = json.loads((adapted / "comparison.json").read_text())
    assert report["current_model"] == str(model_in_use)
    assert report["frames"] == 20  # the validation share of forty patients
    assert "judged_by" not in report and report["verdict"] != "too few frames"
    assert code == (3 if report["verdict"] == "worse" else 0)
    assert not of_type(events, Fold) and not (adapted / "folds").exists()
    saved = json.loads(RunFolder(adapted).run_file.read_text())["settings"]
    assert saved["iterations"] == 1  # given, so not the adapt default
    said = [event.message for event in of_type(events, Status)]
    assert any(m.startswith("comparing the new model with model.onnx on 20 held-out") for m in said)


def test_adapt_with_few_frames_judges_every_frame_once_by_cross_validation(
    capsys, phantom_labelled_many, model_in_use, tmp_path
) -> None:
    labelled = sorted(p.name for p in phantom_labelled_many.glob("*_HC.png"))
    adapted = tmp_path / "adapted"
    code, events, err = train(
        capsys, *BASE, "--labeled", str(phantom_labelled_many), "--iterations", "2",
        "--folds", "3", "--adapt", "--init", str(model_in_use), "--out", str(adapted),
    )  # fmt: skip
    report = json.loads((adapted / "comparison.json").read_text())
    assert report["judged_by"] == "3-fold cross-validation", err[-2000:]
    assert report["frames"] == report["frames_scored"] == len(labelled) == 40
    assert report["verdict"] != "too few frames"
    assert code == (3 if report["verdict"] == "worse" else 0)
    judged = [name for fold in report["folds"] for name in fold["files"]]
    assert sorted(judged) == labelled  # every frame judged exactly once
    assert sorted(row["file"] for row in report["per_frame"]) == labelled
    for number, fold in enumerate(report["folds"], start=1):
        folder = RunFolder(adapted).fold(number)
        assert Path(fold["model"]) == folder.model_file and folder.model_file.is_file()
        trained = _trained_on(folder)
        assert trained and not trained & set(fold["files"])  # judged by a model blind to them
        assert trained | set(fold["files"]) == set(labelled)
        assert fold["candidate"]["dice"]["n"] == fold["frames"] == len(fold["files"])
    # The run's own model trains on every labelled frame and is the one named for promotion.
    assert _trained_on(RunFolder(adapted)) == set(labelled)
    assert report["candidate_model"] == str(RunFolder(adapted).model_file)
    saved = json.loads(RunFolder(adapted).run_file.read_text())["data"]
    assert saved["val_fraction"] == 0.0
    stages = [(e.fold, e.folds, e.stage) for e in of_type(events, Fold)]
    assert stages == [(n, 3, s) for n in (1, 2, 3) for s in ("training", "scored")]
    said = [event.message for event in of_type(events, Status)]
    assert "judged by 3-fold cross-validation on 40 frames" in said
    # The runs list lets its model be proposed (judged by the folds, not by a validation)...
    assert summarise_run(adapted).refusal_to_use() is None
    # ...and no held-out share is made up for it when another model is in use.
    with pytest.raises(ValueError, match="judged by cross-validation"):
        held_out_frames(adapted)


def test_adapt_chooses_cross_validation_when_the_share_holds_too_few_frames(
    phantom_labelled, phantom_labelled_many
) -> None:
    from hc_studio.core.training.kfold import plan_folds

    said: list[str] = []
    args = argparse.Namespace(adapt=True, resume=False, folds=None)
    few = DataSettings(labelled_dir=phantom_labelled, val_fraction=0.3)
    folds = plan_folds(args, few, 0, said.append)
    assert folds is not None and len(folds) == 5 and sum(map(len, folds)) == 10
    assert "holds out 3 frames" in said[0] and "6 trainings" in said[0]
    many = DataSettings(labelled_dir=phantom_labelled_many, val_fraction=0.5)
    assert plan_folds(args, many, 0, said.append) is None  # 20 held out: the single split
    with pytest.raises(ValueError, match="--folds and --val"):
        plan_folds(
            argparse.Namespace(adapt=True, resume=False, folds=3),
            DataSettings(labelled_dir=phantom_labelled, val_dir=phantom_labelled),
            0,
            said.append,
        )


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
    assert (args.method, args.iterations, args.batch_size, args.lr) == ("supervised", 5, 4, 0.03)
    assert ADAPT_DEFAULTS["iterations"] == 700
