"""benchmarks/error_agreement.py: the share of HC error two models have in common."""

from __future__ import annotations

import json

import error_agreement
import numpy as np
import pytest
from protocol_eval import FrameScore, write_per_frame

ERRORS = [1.0, -2.0, 3.0, -0.5, 6.0, 0.25, -4.0, 2.5]


def frames(errors, missing: int | None = None) -> list[FrameScore]:
    return [
        FrameScore(
            file=f"{i:03d}_HC.png",
            patient=f"{i:03d}",
            pixel_mm=0.1,
            status="ok",
            hc_ref_mm=150.0,
            hc_pred_mm=None if i == missing else 150.0 + error,
            hc_diff_mm=None if i == missing else error,
        )
        for i, error in enumerate(errors)
    ]


def test_identical_errors_are_all_shared_and_opposite_ones_cancel_in_the_average() -> None:
    same = error_agreement.agreement(
        error_agreement.paired_errors(frames(ERRORS), frames(ERRORS)), draws=50
    )["statistics"]
    assert same["correlation"]["value"] == pytest.approx(1.0)
    assert same["sd_difference_mm"]["value"] == pytest.approx(0.0)
    assert same["mean_abs_average_mm"]["value"] == pytest.approx(np.mean(np.abs(ERRORS)))

    opposite = error_agreement.agreement(
        error_agreement.paired_errors(frames(ERRORS), frames([-e for e in ERRORS])), draws=50
    )
    statistics = opposite["statistics"]
    assert statistics["correlation"]["value"] == pytest.approx(-1.0)
    assert statistics["mean_abs_average_mm"]["value"] == pytest.approx(0.0)
    assert statistics["sd_difference_mm"]["value"] == pytest.approx(2 * np.std(ERRORS))
    low, high = statistics["mean_abs_first_mm"]["low"], statistics["mean_abs_first_mm"]["high"]
    assert low <= statistics["mean_abs_first_mm"]["value"] <= high
    # 6.0 is over 5 mm for both (one negative, still large)
    assert (opposite["large_first"], opposite["large_second"], opposite["large_both"]) == (1, 1, 1)


def test_a_frame_one_model_did_not_measure_is_left_out() -> None:
    pairs = error_agreement.paired_errors(frames(ERRORS), frames(ERRORS, missing=4))
    assert len(pairs) == len(ERRORS) - 1 and "004_HC.png" not in {p.file for p in pairs}
    with pytest.raises(ValueError, match="too few"):
        error_agreement.agreement(pairs[:2])


def test_command_writes_the_summary_and_names_the_models_it_needs(tmp_path, capsys) -> None:
    csv_path = tmp_path / "frames.csv"
    write_per_frame(csv_path, {"a.onnx": frames(ERRORS), "b.onnx": frames(ERRORS[::-1])})
    out = tmp_path / "agreement.json"
    assert error_agreement.main([str(csv_path), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["models"] == ["a.onnx", "b.onnx"] and summary["frames"] == len(ERRORS)
    expected = np.corrcoef(ERRORS, ERRORS[::-1])[0, 1]
    assert summary["statistics"]["correlation"]["value"] == pytest.approx(expected)

    three = tmp_path / "three.csv"
    write_per_frame(three, {m: frames(ERRORS) for m in ("a", "b", "c")})
    assert error_agreement.main([str(three)]) == 2
    assert "three.csv" in capsys.readouterr().err
    assert error_agreement.main([str(three), "--models", "a", "c"]) == 0
