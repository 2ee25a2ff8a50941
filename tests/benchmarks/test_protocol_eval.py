"""The honest protocol: its split, its scoring (same as `hc-studio evaluate`), its statistics and
the review-threshold choice."""

from __future__ import annotations

import json
from dataclasses import replace
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


def _refused(frame: FrameScore) -> FrameScore:
    """`frame` as a model that measured no HC on it (its Dice stays: the mask exists)."""
    return replace(frame, status="not a fetal head", hc_pred_mm=None, hc_diff_mm=None)


def test_a_paired_difference_compares_the_frames_both_models_measured() -> None:
    diffs = np.linspace(-4, 6, 30)
    # Pixel sizes that differ, so that each pixel-size tercile has frames.
    baseline = [
        replace(_frame(f"{n:03d}", diff), pixel_mm=0.05 + 0.01 * n) for n, diff in enumerate(diffs)
    ]
    # The same errors, but the candidate refuses the worst frame and the baseline another one.
    candidate = list(baseline)
    worst = int(np.argmax(np.abs(diffs)))
    candidate[worst] = _refused(candidate[worst])
    baseline = list(baseline)
    baseline[3] = _refused(baseline[3])
    summary = protocol_eval.summarise(candidate, baseline)
    # Alone, the candidate's mean drops with its refused 6 mm frame ...
    own = summary["statistics"]["hc_abs_mean_mm"]["value"]
    assert own < np.mean(np.abs(np.delete(diffs, 3)))
    # ... but paired on the 28 frames both measured, the two are the same model: no difference.
    difference = summary["difference_vs_baseline"]["hc_abs_mean_mm"]
    assert difference == {"value": 0.0, "low": 0.0, "high": 0.0}
    assert summary["common"] == {"hc": 28, "dice": 30, "hd95": 30}
    assert summary["difference_vs_baseline"]["dice"]["value"] == 0.0
    with pytest.raises(ValueError, match="same frames"):
        protocol_eval.common_frames(candidate, baseline[::-1])


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


def test_per_frame_csv_keeps_the_pass_disagreement_and_reads_an_older_csv_without_it(
    tmp_path: Path,
) -> None:
    frames = [_frame("001", 1.0), _frame("002", 7.0)]
    frames[1].pass_disagreement = 0.031
    path = tmp_path / "frames.csv"
    protocol_eval.write_per_frame(path, {"m.onnx": frames})
    assert [f.pass_disagreement for f in protocol_eval.read_per_frame(path)["m.onnx"]] == [
        None,
        0.031,
    ]
    # The same CSV as written before the column existed.
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("pass_disagreement")
    older = tmp_path / "older.csv"
    older.write_text(
        "".join(
            ",".join(c for n, c in enumerate(line.split(",")) if n != drop) + "\n" for line in lines
        )
    )
    read = protocol_eval.read_per_frame(older)["m.onnx"]
    assert [f.pass_disagreement for f in read] == [None, None]
    assert [f.hc_diff_mm for f in read] == [1.0, 7.0]


def test_threshold_flag_uses_the_disagreement_only_when_given_and_present() -> None:
    calm, torn, single = _frame("001", 1.0), _frame("002", 1.0), _frame("003", 1.0)
    calm.pass_disagreement, torn.pass_disagreement = 0.01, 0.03
    calm.pixel_mm, torn.pixel_mm, single.pixel_mm = 0.1, 0.2, 0.3  # a frame per tercile
    two = protocol_eval.threshold_flag(0.9, 0.85)
    three = protocol_eval.threshold_flag(0.9, 0.85, 0.02)
    assert [two(f) for f in (calm, torn, single)] == [False, False, False]
    assert [three(f) for f in (calm, torn, single)] == [False, True, False]
    rates = protocol_eval.summarise(
        [calm, torn, single],
        thresholds={"fit_iou": 0.9, "confidence": 0.85, "pass_disagreement": 0.02},
        edges=[0.15, 0.25],
    )["review_chosen"]
    assert rates["flagged"] == 1


def _disagreeing_frames() -> list[FrameScore]:
    """50 frames where fit IoU and confidence point at good frames and only the pass
    disagreement is high on the three large errors."""
    frames = []
    for n in range(47):
        frame = _frame(f"{n:03d}", 1.0, fit_iou=0.91 + n * 0.001, confidence=0.86 + n * 0.002)
        frame.pass_disagreement = 0.002 + n * 0.0003
        frames.append(frame)
    for n, diff in enumerate((8.0, -6.0, 7.0)):
        frame = _frame(f"{100 + n}", diff, fit_iou=0.95 + n * 0.001, confidence=0.93)
        frame.pass_disagreement = 0.04 + n * 0.01
        frames.append(frame)
    return frames


def test_thresholds_pick_a_pass_disagreement_cut_when_only_it_separates_large_errors() -> None:
    frames = _disagreeing_frames()
    choice = choose_review_thresholds.choose(frames, max_flagged=0.08)
    assert choice["validation"]["large_errors_caught"] == 3
    assert choice["validation"]["flagged"] == 3 <= 0.08 * len(frames)
    assert choice["target_met_on_validation"]
    cut = choice["chosen"]["pass_disagreement"]
    assert cut is not None and max(f.pass_disagreement for f in frames[:47]) < cut < 0.04
    # Without disagreements the choice is the two-threshold one, with no disagreement cut.
    for frame in frames:
        frame.pass_disagreement = None
    plain = choose_review_thresholds.choose(frames, max_flagged=0.08)
    assert plain["chosen"]["pass_disagreement"] is None and "combinations_tried" not in plain
    assert plain["validation"]["large_errors_caught"] < 3


def _brute_force_choice(frames: list[FrameScore], max_flagged: float) -> tuple:
    """The rule tried one combination at a time, as the script did before it was vectorised."""
    measured = [f for f in frames if f.fit_iou is not None and f.confidence is not None]
    iou_cuts = choose_review_thresholds.candidate_cuts([f.fit_iou for f in measured])
    conf_cuts = choose_review_thresholds.candidate_cuts([f.confidence for f in measured])
    observed = [f.pass_disagreement for f in measured if f.pass_disagreement is not None]
    dis_cuts = choose_review_thresholds.candidate_cuts_above(observed) if observed else [None]
    best_key, best = None, None
    for iou_cut in iou_cuts:
        for conf_cut in conf_cuts:
            for dis_cut in dis_cuts:
                rule = protocol_eval.threshold_flag(iou_cut, conf_cut, dis_cut)
                rates = protocol_eval.flag_rates(frames, rule)
                if rates["flagged_share"] > max_flagged:
                    continue
                loose = -iou_cut - conf_cut + (0.0 if dis_cut is None else dis_cut)
                key = (rates["large_errors_caught"], -rates["flagged"], loose)
                if best_key is None or key > best_key:
                    never = dis_cut is None or dis_cut == dis_cuts[-1]
                    best_key, best = key, (iou_cut, conf_cut, None if never else dis_cut, rates)
    assert best is not None
    return best


def test_vectorised_choice_equals_the_brute_force_rule_on_random_frames() -> None:
    rng = np.random.default_rng(0)
    for trial in range(12):
        frames = []
        for n in range(20):
            diff = float(rng.choice([0.5, 1.0, 2.0, 6.0, -7.0]))
            # Coarse values: ties between frames and between looseness sums happen.
            iou = float(rng.choice([0.86, 0.9, 0.93, 0.95, 0.97]))
            conf = float(rng.choice([0.8, 0.85, 0.9, 0.95]))
            frame = _frame(f"{n:03d}", diff, fit_iou=iou, confidence=conf)
            if trial % 4 and rng.random() < 0.8:
                frame.pass_disagreement = float(rng.choice([0.005, 0.01, 0.02, 0.03, 0.05]))
            frames.append(frame)
        frames.append(FrameScore("099_HC.png", "099", 0.1, "no head found"))
        for max_flagged in (0.1, 0.2, 0.35):
            iou_cut, conf_cut, dis_cut, rates = _brute_force_choice(frames, max_flagged)
            choice = choose_review_thresholds.choose(frames, max_flagged)
            assert choice["chosen"] == {
                "fit_iou": round(iou_cut, 4),
                "confidence": round(conf_cut, 4),
                "pass_disagreement": None if dis_cut is None else round(dis_cut, 6),
            }, (trial, max_flagged)
            assert choice["validation"] == rates


def _checkpoint_with_teacher(tmp_path: Path):
    """(iter_100.pt, student, teacher): a tiny U-Net run's checkpoint, the two networks being
    two different initialisations."""
    import torch
    from hc_studio.core.training.checkpoint import save_checkpoint
    from hc_studio.models.unet import UNet

    torch.manual_seed(0)
    student, teacher = UNet(width=4), UNet(width=4)
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
    return checkpoint, student, teacher


def test_candidates_are_the_student_and_the_ema_teacher_of_a_checkpoint(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import select_candidate
    from hc_studio.core.training.export_onnx import load_onnx_weights

    checkpoint, student, teacher = _checkpoint_with_teacher(tmp_path)
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


def test_an_onnx_candidate_is_scored_as_it_is_beside_a_checkpoints_two(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import select_candidate

    checkpoint, _, _ = _checkpoint_with_teacher(tmp_path)
    exported = tmp_path / "restored-ema.onnx"
    exported.write_bytes(b"an exported model")
    models = select_candidate.candidate_models([exported, checkpoint], tmp_path / "out")
    assert models[0] == exported
    assert [p.name for p in models[1:]] == ["iter_100-student.onnx", "iter_100-ema.onnx"]
    assert exported.read_bytes() == b"an exported model"  # not re-exported or touched
    assert not (tmp_path / "out" / "restored-ema-student.onnx").exists()


def test_the_recomputed_ema_has_its_own_batchnorm_statistics_over_the_frames(
    tmp_path: Path,
) -> None:
    torch = pytest.importorskip("torch")
    import cv2
    import select_candidate
    from hc_studio.core.training.batchnorm import recompute_batchnorm_statistics
    from hc_studio.core.training.export_onnx import load_onnx_weights
    from hc_studio.models.unet import UNet

    checkpoint, _, teacher = _checkpoint_with_teacher(tmp_path)
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(3)
    for index in range(5):
        cv2.imwrite(str(frames / f"{index:03d}_HC.png"), rng.integers(0, 255, (64, 96), np.uint8))
        cv2.imwrite(str(frames / f"{index:03d}_HC_Annotation.png"), np.zeros((64, 96), np.uint8))
    path = select_candidate.export_recomputed_ema(checkpoint, tmp_path / "out", frames)
    assert path is not None and path.name == "iter_100-ema-bn.onnx"
    images = select_candidate.read_frames(frames, (32, 48))
    assert images.shape == (5, 1, 32, 48)  # the annotations are not frames
    expected = UNet(width=4)
    expected.load_state_dict(teacher.state_dict())
    recompute_batchnorm_statistics(expected, images)
    _, state = load_onnx_weights(path)
    key = "inc.1.running_mean"
    assert not torch.allclose(teacher.state_dict()[key], expected.state_dict()[key])
    assert torch.allclose(state[key], expected.state_dict()[key], atol=1e-6)


def test_candidates_are_ranked_on_the_frames_every_one_measured() -> None:
    import select_candidate

    steady = {"a.png": 1.0, "b.png": 1.0, "c.png": 5.0}
    refuses_the_hard_frame = {"a.png": 1.2, "b.png": 1.2, "c.png": None}
    # Alone the second candidate's mean (1.2) beats the first's (2.33); on a and b it does not.
    means, common = select_candidate.means_on_common_frames([steady, refuses_the_hard_frame])
    assert means == pytest.approx([1.0, 1.2])
    assert common == 2
    with pytest.raises(ValueError, match="same frames"):
        select_candidate.means_on_common_frames([steady, {"a.png": 1.0}])
    with pytest.raises(ValueError, match="no frame"):
        select_candidate.means_on_common_frames([{"a.png": None}, {"a.png": 1.0}])


def test_a_cached_candidate_score_keeps_its_frames(tmp_path: Path, monkeypatch) -> None:
    import select_candidate

    model = tmp_path / "candidate.onnx"
    model.write_bytes(b"onnx")
    frames = [_frame(f"{n:03d}", diff) for n, diff in enumerate([1.0, -2.0, 3.0])]
    calls = []

    def fake_score(path, pairs, progress):
        calls.append(path)
        return frames

    monkeypatch.setattr(select_candidate, "score_model", fake_score)
    draws = protocol_eval.patient_draws([f.patient for f in frames], 50, 0)
    row, scored = select_candidate.score_candidate(model, [], draws, tmp_path / "cache")
    again, cached = select_candidate.score_candidate(model, [], draws, tmp_path / "cache")
    assert len(calls) == 1  # the second call read the cache
    assert cached == scored == frames
    assert again == row
    assert "frames" not in again


def test_the_train_side_can_be_scored_as_a_fit_diagnostic() -> None:
    args = protocol_eval.parse_args(
        ["data", "--split", str(REPO_SPLIT), "--side", "train", "--model", "m.onnx", "--json", "o"]
    )
    assert args.side == "train"
    frames = protocol_eval.split_frames(REPO_SPLIT, args.side)
    assert len(frames) == 639 and not set(frames) & set(
        protocol_eval.split_frames(REPO_SPLIT, "test")
    )
