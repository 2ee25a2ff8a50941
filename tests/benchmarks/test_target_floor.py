"""target_floor.py: the HC error the training targets themselves carry."""

from __future__ import annotations

import json
from pathlib import Path

import target_floor


def test_coarse_targets_carry_more_error_and_soft_ones_less(
    tmp_path: Path, labelled_phantoms
) -> None:
    pairs = labelled_phantoms(tmp_path)
    fine = [target_floor.frame_errors(pair, (128, 192)) for pair in pairs]
    coarse = [target_floor.frame_errors(pair, (32, 48)) for pair in pairs]
    fine_summary, coarse_summary = target_floor.summarise(fine), target_floor.summarise(coarse)
    # Well under a millimetre at a fine grid, and the grid's coarseness shows in the binary row.
    assert fine_summary["binary"]["hc_abs_mean_mm"] < 0.3
    assert coarse_summary["binary"]["hc_abs_mean_mm"] > fine_summary["binary"]["hc_abs_mean_mm"]
    # Area coverage keeps the sub-pixel position that a binary mask rounds away.
    assert coarse_summary["soft"]["hc_abs_mean_mm"] < coarse_summary["binary"]["hc_abs_mean_mm"]


def test_the_script_writes_its_summary(tmp_path: Path, labelled_phantoms) -> None:
    data = tmp_path / "training_set"
    data.mkdir()
    pairs = labelled_phantoms(data)
    split = tmp_path / "split.json"
    names = [pair.image_path.name for pair in pairs]
    split.write_text(json.dumps({"train": {"frames": names, "patients": []}}))
    out = tmp_path / "floor.json"
    assert (
        target_floor.main(
            [str(data), "--split", str(split), "--image-size", "64", "96", "--json", str(out)]
        )
        == 0
    )
    summary = json.loads(out.read_text())
    assert summary["frames"] == len(pairs) == 4 and summary["image_size"] == [64, 96]
    assert set(summary["binary"]) == {"hc_abs_mean_mm", "hc_abs_p95_mm", "hc_abs_max_mm", "bias_mm"}
