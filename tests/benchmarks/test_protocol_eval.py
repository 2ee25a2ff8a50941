"""The honest protocol: its split, its scoring (same as `hc-studio evaluate`), its statistics and
the review-threshold choice."""

from __future__ import annotations

import json
from pathlib import Path

import choose_review_thresholds
import cv2
import make_protocol_split
import make_split
import numpy as np
import protocol_eval
import pytest
from hc_studio.core.commands import evaluate
from hc_studio.core.dataset import import_labelled_folder
from hc_studio.core.inference import SegmentationEngine
from hc_studio.core.phantom import make_phantom
from protocol_eval import FrameScore
from test_make_split import make_hc18_folder

REPO_SPLIT = Path(__file__).resolve().parents[2] / "docs" / "results" / "protocol_split.json"
# 40 patients, 8 of them with a second frame: enough for every side to hold several patients.
MANY_FRAMES = [f"{n:03d}_HC.png" for n in range(1, 41)] + [f"{n:03d}_2HC.png" for n in range(1, 9)]


def test_protocol_keeps_the_base_train_side_and_halves_the_held_out_patients(tmp_path) -> None:
    data, csv_path = make_hc18_folder(tmp_path, MANY_FRAMES)
    _, frames, _ = make_split.read_frame_rows(csv_path, data)
    sides = make_protocol_split.plan_protocol(frames)
    base = make_split.plan_split(frames, 0.2, 0)
    assert sides["train"] == base["train"]
    assert sorted(f.name for f in sides["validation"] + sides["test"]) == sorted(
        f.name for f in base["val"]
    )
    patients = {side: {f.patient for f in rows} for side, rows in sides.items()}
    assert not patients["train"] & patients["validation"]
    assert not patients["train"] & patients["test"]
    assert not patients["validation"] & patients["test"]
    assert sides["validation"] and sides["test"]


def test_recorded_split_differs_from_a_changed_one(tmp_path: Path) -> None:
    data, csv_path = make_hc18_folder(tmp_path, MANY_FRAMES)
    _, frames, _ = make_split.read_frame_rows(csv_path, data)
    summary = make_protocol_split.describe(make_protocol_split.plan_protocol(frames))
    recorded = tmp_path / "split.json"
    recorded.write_text(json.dumps(summary))
    assert make_protocol_split.check_against(summary, recorded) == []
    summary["test"]["frames"] = summary["test"]["frames"][1:]
    assert make_protocol_split.check_against(summary, recorded) == [
        "split.json: test frames differ from the data's split"
    ]


@pytest.mark.hc18
def test_recorded_hc18_split_is_reproduced_and_patient_disjoint(hc18_dir: Path) -> None:
    data = hc18_dir / "training_set"
    _, frames, _ = make_split.read_frame_rows(hc18_dir / "training_set_pixel_size_and_HC.csv", data)
    summary = make_protocol_split.describe(make_protocol_split.plan_protocol(frames))
    assert make_protocol_split.check_against(summary, REPO_SPLIT) == []
    recorded = json.loads(REPO_SPLIT.read_text())
    # The shipped model's held-out side (its model card: 159 frames, 133 patients) is split.
    held_out = recorded["validation"]["frames"] + recorded["test"]["frames"]
    assert len(recorded["train"]["frames"]) == 639 and len(held_out) == 159
    assert len(recorded["validation"]["patients"]) + len(recorded["test"]["patients"]) == 133
    sides = [set(recorded[s]["patients"]) for s in make_protocol_split.SIDES]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    base = make_split.plan_split(frames, 0.2, 0)
    assert sorted(held_out) == sorted(f.name for f in base["val"])


def _write_png(path: Path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))


def test_score_frame_gives_the_values_of_hc_studio_evaluate(tmp_path, tiny_onnx_model) -> None:
    for seed in range(3):
        phantom = make_phantom((135, 200), seed=seed)
        _write_png(tmp_path / f"00{seed}_HC.png", phantom.image)
        _write_png(tmp_path / f"00{seed}_HC_Annotation.png", phantom.outline)
    (tmp_path / "pixel_size.csv").write_text(
        "filename,pixel size(mm)\n" + "".join(f"00{s}_HC.png,0.2\n" for s in range(3))
    )
    pairs = import_labelled_folder(tmp_path, None, None, False).pairs
    engine = SegmentationEngine(tiny_onnx_model, device="cpu")
    for pair in pairs:
        ours = protocol_eval.score_frame(pair, engine)
        theirs = evaluate.evaluate_pair(pair, engine)
        assert ours.dice == pytest.approx(theirs.dice)
        assert ours.hd95_mm == pytest.approx(theirs.hd95_mm)
        assert ours.hc_diff_mm == pytest.approx(theirs.hc_diff_mm)
        assert ours.fit_iou is not None and ours.confidence is not None


def _frame(patient: str, diff: float, fit_iou: float = 0.99, confidence: float = 0.97):
    return FrameScore(
        f"{patient}_HC.png",
        patient,
        0.1,
        "ok",
        0.97,
        1.0,
        100 + diff,
        100.0,
        diff,
        fit_iou,
        confidence,
    )


def test_bootstrap_interval_holds_the_value_and_a_paired_difference_of_zero_is_zero() -> None:
    frames = [_frame(f"{n:03d}", diff) for n, diff in enumerate(np.linspace(-4, 6, 30))]
    draws = protocol_eval.patient_draws([f.patient for f in frames], 200, 0)
    stat = protocol_eval.STATISTICS["hc_abs_mean_mm"]
    interval = protocol_eval.bootstrap(frames, stat, draws)
    assert interval["low"] < interval["value"] < interval["high"]
    assert interval["value"] == pytest.approx(np.mean(np.abs(np.linspace(-4, 6, 30))))
    same = protocol_eval.bootstrap(frames, stat, draws, baseline=frames)
    assert same == {"value": 0.0, "low": 0.0, "high": 0.0}


def test_flag_rates_count_unmeasured_frames_as_caught_large_errors() -> None:
    frames = [_frame("001", 1.0), _frame("002", 7.0, fit_iou=0.8), _frame("003", 6.0)]
    frames.append(FrameScore("004_HC.png", "004", 0.1, "no head found"))
    rates = protocol_eval.flag_rates(frames, protocol_eval.threshold_flag(0.9, 0.85))
    assert (rates["flagged"], rates["large_errors"], rates["large_errors_caught"]) == (2, 3, 2)


def test_thresholds_catch_the_large_errors_within_the_flag_budget() -> None:
    # 40 frames; the three large errors have the lowest fit IoU, one good frame lower still.
    frames = [_frame(f"{n:03d}", 1.0, fit_iou=0.95 + n * 0.001) for n in range(36)]
    frames += [_frame("100", 8.0, 0.90), _frame("101", -6.0, 0.91), _frame("102", 7.0, 0.92)]
    frames.append(_frame("103", 0.5, 0.89))
    choice = choose_review_thresholds.choose(frames, max_flagged=0.10)
    assert choice["validation"]["large_errors_caught"] == 3
    assert choice["validation"]["flagged"] == 4
    assert choice["target_met_on_validation"]
    tight = choose_review_thresholds.choose(frames, max_flagged=0.05)
    assert tight["validation"]["flagged"] <= 2 and not tight["target_met_on_validation"]


def test_candidates_are_the_student_and_the_ema_teacher_of_a_checkpoint(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import select_candidate
    from hc_studio.core.training.checkpoint import save_checkpoint
    from hc_studio.core.training.export_onnx import load_onnx_weights
    from hc_studio.models.unet import UNet

    torch.manual_seed(0)
    student, teacher = UNet(width=4), UNet(width=4)  # two different initialisations
    checkpoint = tmp_path / "iter_100.pt"
    save_checkpoint(
        checkpoint,
        {
            "model": {"config": student.config, "state": student.state_dict()},
            "teacher": teacher.state_dict(),
            "settings": {"image_size": [32, 48]},
            "method": {"name": "ersr"},
            "best": {"dice": 0.5},
        },
    )
    paths = select_candidate.export_candidates(checkpoint, tmp_path / "out")
    assert [p.name for p in paths] == ["iter_100-student.onnx", "iter_100-ema.onnx"]
    for path, network in zip(paths, (student, teacher), strict=True):
        _, state = load_onnx_weights(path)
        key = next(k for k in state if k.endswith("head.weight"))
        assert torch.equal(state[key], network.state_dict()[key])
    # A second call reuses the exports instead of writing them again.
    stamps = [p.stat().st_mtime_ns for p in paths]
    select_candidate.export_candidates(checkpoint, tmp_path / "out")
    assert [p.stat().st_mtime_ns for p in paths] == stamps
