"""Shared fixtures: synthetic phantoms, a tiny ONNX segmentation model, the HC18 folder."""

from __future__ import annotations

import os

# Qt tests run offscreen; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
HC18_DIR = REPO_ROOT.parent / "shared" / "data" / "hc18"

# The phantom's grey levels (core.phantom): background ~0.1, brain ~0.35, skull ring ~0.9.
# Clipping at the brain level turns the skull into brain, so the head is one filled region whose
# boundary (the outer skull border) is where the smoothed image crosses the background/brain
# midpoint: an unbiased segmentation without learning anything.
_CLIP_LEVEL = 0.35
_THRESHOLD = 0.225
_SHARPNESS = 40.0  # logit per unit of smoothed intensity

TINY_MODEL_METADATA = {
    "hc_studio.name": "tiny-threshold",
    "hc_studio.input_height": "128",
    "hc_studio.input_width": "192",
    "hc_studio.normalisation": json.dumps({"scale": "0-1"}),
    "hc_studio.resize": "stretch",
    "hc_studio.output": "probability",
    "hc_studio.multiple": "16",
    "hc_studio.method": "threshold (test graph)",
    "hc_studio.data": "none",
    "hc_studio.date": "2024-01-01",
    "hc_studio.validation": json.dumps({}),
}


def build_threshold_model(
    path: Path,
    metadata: dict[str, str] | None = None,
    static_hw: tuple[int, int] | None = None,
    output: str = "probability",
    mean: float = 0.0,
    std: float = 1.0,
) -> Path:
    """Write an ONNX graph (N,1,H,W) -> (N,1,H,W) that segments a phantom head.

    `mean`/`std`: the graph expects inputs normalised as (x - mean) / std and undoes it in its
    constants. `output="logits"` leaves out the final sigmoid. `static_hw` fixes H and W.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: float) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, dtype=np.float32), name)

    clip = (_CLIP_LEVEL - mean) / std
    threshold = (_THRESHOLD - mean) / std
    sharpness = _SHARPNESS * std
    nodes = [
        helper.make_node("Min", ["image", "clip"], ["clipped"]),
        helper.make_node(
            "AveragePool",
            ["clipped"],
            ["smoothed"],
            kernel_shape=[5, 5],
            pads=[2, 2, 2, 2],
            count_include_pad=0,
        ),
        helper.make_node("Sub", ["smoothed", "threshold"], ["centred"]),
        helper.make_node("Mul", ["centred", "sharpness"], ["logits"]),
    ]
    final_op = "Sigmoid" if output == "probability" else "Identity"
    nodes.append(helper.make_node(final_op, ["logits"], ["scores"]))
    height, width = static_hw if static_hw else ("H", "W")
    batch = 1 if static_hw else "N"
    graph = helper.make_graph(
        nodes,
        "tiny_threshold",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 1, height, width])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 1, height, width])],
        initializer=[
            const("clip", clip),
            const("threshold", threshold),
            const("sharpness", sharpness),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the project supports
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of an ONNX model named "tiny-threshold" that segments `phantom` heads (128x192)."""
    folder = tmp_path_factory.mktemp("tiny_model")
    return build_threshold_model(folder / "tiny-threshold.onnx", TINY_MODEL_METADATA)


@pytest.fixture(scope="session")
def onnx_model_factory() -> Callable[..., Path]:
    """`build_threshold_model(path, metadata=None, static_hw=None, output=..., mean=, std=)`."""
    return build_threshold_model


@pytest.fixture
def phantom():
    """A synthetic head phantom (core.phantom.make_phantom defaults) with its known ellipse."""
    from hc_studio.core.phantom import make_phantom

    return make_phantom()


@pytest.fixture(scope="session")
def hc18_dir() -> Path:
    """The shared HC18 folder (../shared/data/hc18 beside the repository); skips when absent."""
    if not (HC18_DIR / "training_set").is_dir():
        pytest.skip(f"HC18 data not found at {HC18_DIR}")
    return HC18_DIR
