"""The model history: promotions, their refusal rule, the way back, and a file never lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hc_studio.core.model_history import (
    ModelHistory,
    ModelHistoryError,
    comparison_digest,
    promotion_refusal,
)


def report(verdict: str, frames: int = 40) -> dict:
    return {
        "verdict": verdict,
        "frames": frames,
        "frames_scored": frames,
        "resampled": "patients",
        "frames_worse": [],
        "difference": {"dice": {"mean": 0.01, "low": 0.0, "high": 0.02}},
        "candidate": {"dice": {"mean": 0.91}},
        "current": {"dice": {"mean": 0.90}},
        "per_frame": [{"file": "x"}] * frames,
    }


@pytest.mark.parametrize(
    "verdict, refused",
    [("better", False), ("no different", False), ("worse", True), ("too few frames", True)],
)
def test_worse_or_too_few_frames_is_refused_unless_a_reason_is_typed(verdict, refused) -> None:
    refusal = promotion_refusal(report(verdict))
    assert (refusal is not None) == refused
    assert promotion_refusal(report(verdict), reason="  chief's decision ") is None
    assert promotion_refusal(report(verdict), reason="   ") == refusal  # blank is no reason


def test_no_comparison_needs_a_reason() -> None:
    assert "not compared" in promotion_refusal(None)
    assert promotion_refusal(None, "first model of this clinic") is None


def test_promotions_keep_parent_data_comparison_and_the_way_back(tmp_path: Path) -> None:
    history = ModelHistory(tmp_path / "history.json")
    assert history.current() is None and history.previous_model() is None
    history.promote("shipped.onnx", None, reason="installed")
    digest = comparison_digest(report("better"))
    assert "per_frame" not in digest and digest["candidate_dice"] == 0.91
    entry = history.promote(
        "run1/model.onnx", "shipped.onnx", {"labelled_dir": "clinic"}, digest, now=0
    )
    assert entry.promoted_at == "1970-01-01T00:00:00Z" and entry.reason is None
    assert history.previous_model() == Path("shipped.onnx")
    back = history.back_to_previous()
    assert back.model == "shipped.onnx" and back.parent == "run1/model.onnx"
    assert back.reason == "back to the previous model"
    reread = ModelHistory(tmp_path / "history.json").entries()
    assert [e.model for e in reread] == ["shipped.onnx", "run1/model.onnx", "shipped.onnx"]
    assert reread[1].data == {"labelled_dir": "clinic"} and reread[1].comparison == digest


def test_an_unreadable_history_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text('{"promotions": [ {"model": ')
    history = ModelHistory(path)
    with pytest.raises(ModelHistoryError, match="history.json"):
        history.promote("a.onnx", None)
    assert path.read_text() == '{"promotions": [ {"model": '
    path.write_text(json.dumps({"promotions": [{"nothing": 1}]}))
    with pytest.raises(ModelHistoryError, match="not a model history"):
        history.current()
