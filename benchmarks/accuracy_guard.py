"""Record the figures that the CI accuracy guard (tests/benchmarks/test_accuracy_guard.py) holds
the default model to.

The guard measures the installed default model on a fixed subset of the protocol's test side
(every second test frame: 40 of 79, patients never used for training or for any choice) through
`protocol_eval.score_frame`, the path of `hc-studio measure` / `evaluate`, and compares mean Dice
and mean |HC error| with the values recorded here. Re-record (and say why in the commit) only when
the default model or the measurement is changed on purpose:

    python benchmarks/accuracy_guard.py HC18_DIR/training_set  # -> docs/results/accuracy_guard.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from hc_studio.core.atomic import atomic_write
from protocol_eval import FrameScore, load_pairs, score_model, split_frames

REPO_ROOT = Path(__file__).resolve().parents[1]
SPLIT_JSON = REPO_ROOT / "docs" / "results" / "protocol_split.json"
GUARD_JSON = REPO_ROOT / "docs" / "results" / "accuracy_guard.json"
# Room for onnxruntime and OpenCV builds that round differently; a change in preprocessing,
# thresholding or ellipse fitting moves these means by more (e.g. a one-pixel shift of the
# outline is ~0.3 mm of HC on these frames).
TOLERANCE = {"dice": 0.002, "hc_abs_mean_mm": 0.10}


def guard_frames(split_json: Path = SPLIT_JSON) -> list[str]:
    """The fixed subset: every second frame of the test side, in the split's order."""
    return split_frames(split_json, "test")[::2]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_sha256(model: Path) -> str:
    """The model file's SHA-256; for a model with a refining model, that of both files' hashes
    (a new refiner beside the same first model is a new default model too)."""
    from hc_studio.core.inference import SegmentationEngine

    refiner = SegmentationEngine(model, "cpu").refiner
    if refiner is None:
        return file_sha256(model)
    both = file_sha256(model) + file_sha256(refiner.model_path)
    return hashlib.sha256(both.encode("ascii")).hexdigest()


def guard_figures(frames: list[FrameScore]) -> dict[str, float]:
    """Mean Dice and mean |HC error| (mm) over the frames (an unmeasured frame is a failure)."""
    errors = [f.hc_abs_mm for f in frames]
    if any(error is None for error in errors):
        raise ValueError(
            "a guard frame gave no HC: " + ", ".join(f.file for f in frames if f.hc_abs_mm is None)
        )
    return {
        "dice": float(np.mean([f.dice for f in frames])),
        "hc_abs_mean_mm": float(np.mean(errors)),
    }


def measure(data_dir: Path, model: Path) -> dict[str, float]:
    return guard_figures(score_model(model, load_pairs(data_dir, guard_frames()), progress=False))


def main(argv: list[str] | None = None) -> int:
    from hc_studio.core.inference import default_model_path

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="HC18 training_set")
    parser.add_argument("--json", type=Path, default=GUARD_JSON, help="default: %(default)s")
    args = parser.parse_args(argv)
    model = default_model_path()
    if model is None:
        print("accuracy_guard: no default model installed", file=sys.stderr)
        return 2
    figures = measure(args.data_dir, model)
    record = {
        "model_file": model.name,
        "model_sha256": model_sha256(model),
        "frames": len(guard_frames()),
        "subset": "protocol_split.json test side, every second frame",
        "figures": figures,
        "tolerance": TOLERANCE,
        "command": "python benchmarks/accuracy_guard.py HC18_DIR/training_set",
    }
    with atomic_write(args.json) as handle:
        handle.write(json.dumps(record, indent=1) + "\n")
    print(f"{model.name}: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
