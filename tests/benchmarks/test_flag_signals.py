"""flag_signals.py: how well per-frame signals could flag the large HC errors at all."""

from __future__ import annotations

import json

import flag_signals
import numpy as np
import protocol_eval
import pytest
from hc_studio.core.inference import SegmentationEngine


def test_auc_is_one_for_a_separating_signal_and_a_half_for_a_constant_one() -> None:
    positive = np.array([False, False, False, True, True])
    assert flag_signals.roc_auc(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), positive) == 1.0
    assert flag_signals.roc_auc(np.ones(5), positive) == 0.5
    assert flag_signals.roc_auc(np.ones(5), np.zeros(5, dtype=bool)) is None


def test_the_oracle_pair_catches_what_neither_signal_catches_alone() -> None:
    # Ten frames, two large errors: frame 0 stands out only on signal a, frame 1 only on b.
    positive = np.zeros(10, dtype=bool)
    positive[[0, 1]] = True
    a = np.array([9.0, 0, 1, 2, 3, 4, 5, 6, 7, 8]) / 10
    b = np.array([0.0, 9, 1, 2, 3, 4, 5, 6, 7, 8]) / 10
    assert flag_signals.oracle_catch([a], positive, budget=2) == {"caught": 1, "flagged": 1}
    assert flag_signals.oracle_catch([a, b], positive, budget=2) == {"caught": 2, "flagged": 2}
    rows = [
        {"file": str(i), "error_mm": 9.0 if positive[i] else 1.0, "fit_iou": 1.0,
         "confidence": 1.0, "band_mm": a[i], "mirror_mm": b[i], "pixel_mm": 0.1, "hc_mm": 200.0}
        for i in range(10)
    ]  # fmt: skip
    summary = flag_signals.summarise(rows, budget_share=0.2, large_error=5.0)
    assert summary["best_pair"]["signals"] == "band_mm+mirror_mm"
    assert summary["best_pair"]["gain_over_best_single"] == 1
    # A budget of nothing flags nothing.
    assert flag_signals.oracle_catch([a, b], positive, budget=0) == {"caught": 0, "flagged": 0}


def test_summary_orients_the_signals_so_that_low_fit_iou_is_doubtful() -> None:
    rows = [
        {
            "file": f"{i:03d}_HC.png",
            "error_mm": 8.0 if i < 2 else 1.0,
            "fit_iou": 0.80 if i < 2 else 0.97,
            "confidence": 0.95,
            "band_mm": 1.0,
            "mirror_mm": 0.5,
            "pixel_mm": 0.1,
            "hc_mm": 200.0,
        }
        for i in range(25)
    ]
    summary = flag_signals.summarise(rows, budget_share=0.08, large_error=5.0)
    assert summary["large_errors"] == 2 and summary["flag_budget"] == 2
    assert summary["signals"]["fit_iou"] == {"auc": 1.0, "caught": 2, "flagged": 2}
    assert summary["signals"]["confidence"]["caught"] == 0
    assert summary["best_single"] == "fit_iou"
    assert (
        summary["best_pair"]["caught"] == 2 and summary["best_pair"]["gain_over_best_single"] == 0
    )


def test_frame_signals_measure_the_frame_as_protocol_eval_does(
    tmp_path, tiny_onnx_model, labelled_phantoms
) -> None:
    data = tmp_path / "training_set"
    data.mkdir()
    pairs = labelled_phantoms(data, count=3, shape=(135, 200), pixel_mm=0.2)
    engine = SegmentationEngine(tiny_onnx_model, device="cpu")
    rows = [flag_signals.frame_signals(pair, engine) for pair in pairs]
    assert any(row is not None for row in rows)
    for pair, row in zip(pairs, rows, strict=True):
        if row is None:
            continue
        scored = protocol_eval.score_frame(pair, engine)
        assert row["error_mm"] == pytest.approx(scored.hc_diff_mm)
        assert row["fit_iou"] == pytest.approx(scored.fit_iou)
        assert row["pixel_mm"] == pytest.approx(0.2) and row["mirror_mm"] >= 0

    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": {"frames": [p.image_path.name for p in pairs]}}))
    out = tmp_path / "signals.json"
    argv = [str(data), "--split", str(split), "--model", str(tiny_onnx_model), "--json", str(out)]
    assert flag_signals.main(argv) == 0
    written = json.loads(out.read_text())
    assert written["side"] == "train" and written["frames"] == len(written["per_frame"])
    assert set(written["signals"]) == set(flag_signals.SIGNALS)
