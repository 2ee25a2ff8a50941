"""target_floor.py: the HC error the training targets themselves carry."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import target_floor
from hc_studio.core.dataset import import_labelled_folder
from hc_studio.core.phantom import make_phantom


def _phantom_folder(folder: Path, count: int = 4) -> list:
    for seed in range(count):
        phantom = make_phantom((270, 400), seed=seed)
        for name, image in (
            (f"00{seed}_HC.png", phantom.image),
            (f"00{seed}_HC_Annotation.png", phantom.outline),
        ):
            cv2.imwrite(str(folder / name), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    (folder / "pixel_size.csv").write_text(
        "filename,pixel size(mm)\n" + "".join(f"00{s}_HC.png,0.3\n" for s in range(count))
    )
    return import_labelled_folder(folder, None, None, False).pairs


def test_coarse_targets_carry_more_error_and_soft_ones_less(tmp_path: Path) -> None:
    pairs = _phantom_folder(tmp_path)
    fine = [target_floor.frame_errors(pair, (128, 192)) for pair in pairs]
    coarse = [target_floor.frame_errors(pair, (32, 48)) for pair in pairs]
    fine_summary, coarse_summary = target_floor.summarise(fine), target_floor.summarise(coarse)
    # Well under a millimetre at a fine grid, and the grid's coarseness shows in the binary row.
    assert fine_summary["binary"]["hc_abs_mean_mm"] < 0.3
    assert coarse_summary["binary"]["hc_abs_mean_mm"] > fine_summary["binary"]["hc_abs_mean_mm"]
    # Area coverage keeps the sub-pixel position that a binary mask rounds away.
    assert coarse_summary["soft"]["hc_abs_mean_mm"] < coarse_summary["binary"]["hc_abs_mean_mm"]


def test_the_script_writes_its_summary(tmp_path: Path) -> None:
    data = tmp_path / "training_set"
    data.mkdir()
    pairs = _phantom_folder(data)
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
