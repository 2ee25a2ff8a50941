"""Quantise an HC Studio ONNX model to int8 (static QDQ, per-channel weights), keeping metadata.

Why: on the 2-core CPU the network is three quarters of a frame's time; int8 convolutions
(VNNI) halve it, which is what lets a refining second pass fit the 35 ms a frame of issue 14.
Calibration reads frames of the training side only (never validation or test): whole frames for
a first-pass model, the head crops of `make_head_crops.py` for a refining model; each is brought
to the model's input size the way `core.inference` does (INTER_AREA stretch, 0-1 scaling).
Whether the accuracy holds is measured afterwards with `protocol_eval.py` on validation
(docs/benchmarks.md 3c: how the calibration and the layers kept in float moved it).

    python benchmarks/quantize_model.py MODEL.onnx --calibration DIR --out MODEL_int8.onnx \\
        [--frames 128] [--percentile 99.99] [--float-nodes /network/ups.3/] [--float-head]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from hc_studio.core.training.export_onnx import FLOAT_WEIGHTS_KEY


def calibration_inputs(folder: Path, height: int, width: int, count: int) -> list[np.ndarray]:
    """(1, 1, h, w) inputs from the first `count` frames of `folder` (sorted; no annotations)."""
    files = sorted(
        p for p in folder.rglob("*.png") if "_Annotation" not in p.name and p.parent.name != "masks"
    )[:count]
    inputs = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"{path}: not a readable image")
        resized = cv2.resize(image.astype(np.float32) / 255.0, (width, height), cv2.INTER_AREA)
        inputs.append(resized[np.newaxis, np.newaxis])
    if not inputs:
        raise ValueError(f"{folder}: no calibration frames")
    return inputs


@dataclass(frozen=True)
class Recipe:
    """How activations are calibrated and which layers stay in float.

    `percentile` None: min-max ranges; else the ranges that hold that percentile of the
    calibration activations. `float_prefixes`: nodes whose names start with one of them stay
    float; `float_head`: the output node and the node feeding it (the head convolution) too.
    """

    percentile: float | None = None
    float_prefixes: tuple[str, ...] = ()
    float_head: bool = False


def float_nodes(model_path: Path, recipe: Recipe) -> list[str]:
    """The node names `recipe` keeps in float, in the (pre-processed) model at `model_path`."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    names = [n.name for n in graph.node if n.name.startswith(recipe.float_prefixes)]
    if recipe.float_head:
        producers = {output: node for node in graph.node for output in node.output}
        last = producers[graph.output[0].name]
        names.append(last.name)
        feeding = producers.get(last.input[0])
        if feeding is not None:
            names.append(feeding.name)
    return names


def quantise(
    model: Path,
    calibration: Path,
    out: Path,
    count: int = 64,
    recipe: Recipe = Recipe(),
    float_weights: str | None = None,
) -> None:
    """Write the int8 model of `model` to `out`; `float_weights`: the name of the float model
    beside `out` that training starts from (`hc_studio.float_weights`); it must be there."""
    if float_weights is not None and not (out.parent / float_weights).is_file():
        raise ValueError(f"{float_weights}: the float weights must be beside {out} (not found)")
    import onnx
    from hc_studio.core.inference import SegmentationEngine
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    info = SegmentationEngine(model, "cpu", load_refiner=False).info
    inputs = calibration_inputs(calibration, info.input_height, info.input_width, count)
    input_name = onnx.load(str(model)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._inputs = iter(inputs)

        def get_next(self) -> dict | None:
            batch = next(self._inputs, None)
            return None if batch is None else {input_name: info.normalise(batch)}

    with tempfile.TemporaryDirectory() as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        quantised = Path(work) / "int8.onnx"
        calibration_options = {}
        if recipe.percentile is not None:
            calibration_options = {
                "calibrate_method": CalibrationMethod.Percentile,
                "extra_options": {"CalibPercentile": recipe.percentile},
            }
        quantize_static(
            str(prepared),
            str(quantised),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=float_nodes(prepared, recipe) or None,
            **calibration_options,
        )
        result = onnx.load(str(quantised))
    source = onnx.load(str(model))
    del result.metadata_props[:]
    result.metadata_props.extend(source.metadata_props)
    if float_weights is not None:
        entry = result.metadata_props.add()
        entry.key, entry.value = FLOAT_WEIGHTS_KEY, float_weights
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(result, str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="The float32 HC Studio ONNX model.")
    parser.add_argument(
        "--calibration", type=Path, required=True, help="Training-side frames (or crops)."
    )
    parser.add_argument("--frames", type=int, default=64, help="Calibration frames (64).")
    parser.add_argument("--out", type=Path, required=True, help="The int8 model to write.")
    parser.add_argument(
        "--percentile", type=float, help="Calibrate to this percentile (default min-max)."
    )
    parser.add_argument(
        "--float-nodes",
        action="append",
        default=[],
        metavar="PREFIX",
        help="Keep nodes whose names start with PREFIX in float (repeatable).",
    )
    parser.add_argument("--float-head", action="store_true", help="Keep the output head in float.")
    parser.add_argument(
        "--float-weights",
        metavar="NAME",
        help="The float model beside --out that `train --init` and `--adapt` start from "
        "(int8 convolutions with batch norm folded in cannot be trained).",
    )
    args = parser.parse_args(argv)
    recipe = Recipe(args.percentile, tuple(args.float_nodes), args.float_head)
    try:
        quantise(args.model, args.calibration, args.out, args.frames, recipe, args.float_weights)
    except (OSError, ValueError) as error:
        print(f"quantize_model: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
