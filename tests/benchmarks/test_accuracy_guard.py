"""The default model's accuracy on held-out HC18 patients stays where it was recorded.

The figures and tolerance come from docs/results/accuracy_guard.json, written by
`benchmarks/accuracy_guard.py` (see its docstring for when and how to re-record them).
"""

from __future__ import annotations

import json
from pathlib import Path

import accuracy_guard
import pytest


@pytest.mark.hc18
@pytest.mark.slow
def test_default_model_accuracy_on_held_out_patients(hc18_dir: Path) -> None:
    from hc_studio.core.inference import default_model_path

    recorded = json.loads(accuracy_guard.GUARD_JSON.read_text())
    model = default_model_path()
    assert model is not None, "no default model installed"
    assert accuracy_guard.model_sha256(model) == recorded["model_sha256"], (
        f"the default model {model.name} is not the one the guard figures were recorded for "
        f"({recorded['model_file']}): re-record them with `{recorded['command']}`"
    )
    assert len(accuracy_guard.guard_frames()) == recorded["frames"]
    measured = accuracy_guard.measure(hc18_dir / "training_set", model)
    for figure, tolerance in recorded["tolerance"].items():
        assert measured[figure] == pytest.approx(recorded["figures"][figure], abs=tolerance), (
            f"{figure}: measured {measured[figure]:.4f}, recorded {recorded['figures'][figure]:.4f}"
        )


def test_guard_subset_is_fixed_and_inside_the_test_side() -> None:
    split = json.loads(accuracy_guard.SPLIT_JSON.read_text())
    frames = accuracy_guard.guard_frames()
    assert frames == split["test"]["frames"][::2]
    assert set(frames) <= set(split["test"]["frames"])
    assert not set(frames) & set(split["train"]["frames"] + split["validation"]["frames"])


def test_the_guard_checksum_covers_the_refining_model(
    tmp_path: Path, onnx_model_factory, tiny_model_metadata
) -> None:
    square = {**tiny_model_metadata, "hc_studio.input_height": "96", "hc_studio.input_width": "96"}
    onnx_model_factory(tmp_path / "refine.onnx", square)
    first = onnx_model_factory(
        tmp_path / "first.onnx", {**tiny_model_metadata, "hc_studio.refiner": "refine.onnx"}
    )
    before = accuracy_guard.model_sha256(first)
    assert before != accuracy_guard.file_sha256(first)
    onnx_model_factory(tmp_path / "refine.onnx", {**square, "hc_studio.name": "another"})
    assert accuracy_guard.model_sha256(first) != before
    single = onnx_model_factory(tmp_path / "single.onnx", tiny_model_metadata)
    assert accuracy_guard.model_sha256(single) == accuracy_guard.file_sha256(single)
