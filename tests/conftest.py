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
# Tests that need the real data look in $HC_STUDIO_DATA (the folder that holds hc18/ and
# psfhs-dev/), else in ../shared/data beside the repository; without either they skip.
DATA_ENV = "HC_STUDIO_DATA"


def data_root() -> Path:
    """The folder holding hc18/ and psfhs-dev/: $HC_STUDIO_DATA, else ../shared/data."""
    configured = os.environ.get(DATA_ENV, "").strip()
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


HC18_DIR = data_root() / "hc18"

# The phantom's grey levels (core.phantom): background ~0.1, brain ~0.35, skull ring ~0.9.
# Two thresholds, united: (1) the smoothed image above the background/skull midpoint gives the skull
# ring with its outer border where it really is (the 0.5 crossing of a linear partial-volume edge);
# (2) the image clipped at the brain level, eroded by one pixel, fills the inside of the ring
# without reaching the outer border (clipping alone would push it outward by partial volume).
_SKULL_THRESHOLD = 0.5
_BRAIN_LEVEL = 0.35
_BRAIN_THRESHOLD = 0.225
_OUTER_SHARPNESS = 40.0  # logit per unit of smoothed intensity
_INNER_SHARPNESS = 80.0

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

    def level(intensity: float) -> float:
        return (intensity - mean) / std

    def pool(op: str, source: str, target: str, size: int) -> onnx.NodeProto:
        extra = {"count_include_pad": 0} if op == "AveragePool" else {}
        pad = size // 2
        return helper.make_node(
            op, [source], [target], kernel_shape=[size, size], pads=[pad] * 4, **extra
        )

    nodes = [
        pool("AveragePool", "image", "smoothed", 5),
        helper.make_node("Sub", ["smoothed", "skull_threshold"], ["outer_centred"]),
        helper.make_node("Mul", ["outer_centred", "outer_sharpness"], ["outer_logits"]),
        helper.make_node("Min", ["image", "brain_level"], ["clipped"]),
        helper.make_node("Neg", ["clipped"], ["negated"]),
        pool("MaxPool", "negated", "eroded_negated", 3),
        helper.make_node("Neg", ["eroded_negated"], ["eroded"]),
        pool("AveragePool", "eroded", "inner_smoothed", 5),
        helper.make_node("Sub", ["inner_smoothed", "brain_threshold"], ["inner_centred"]),
        helper.make_node("Mul", ["inner_centred", "inner_sharpness"], ["inner_logits"]),
        helper.make_node("Max", ["outer_logits", "inner_logits"], ["logits"]),
    ]
    final_op = "Sigmoid" if output == "probability" else "Identity"
    nodes.append(helper.make_node(final_op, ["logits"], ["scores"]))
    constants = {
        "skull_threshold": level(_SKULL_THRESHOLD),
        "outer_sharpness": _OUTER_SHARPNESS * std,
        "brain_level": level(_BRAIN_LEVEL),
        "brain_threshold": level(_BRAIN_THRESHOLD),
        "inner_sharpness": _INNER_SHARPNESS * std,
    }
    height, width = static_hw if static_hw else ("H", "W")
    batch = 1 if static_hw else "N"
    graph = helper.make_graph(
        nodes,
        "tiny_threshold",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 1, height, width])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 1, height, width])],
        initializer=[const(name, value) for name, value in constants.items()],
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
def tiny_model_metadata() -> dict[str, str]:
    """A copy of the tiny model's metadata, to vary one key in a test."""
    return dict(TINY_MODEL_METADATA)


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
    """The HC18 folder (`data_root() / "hc18"`); skips, saying where it looked, when absent."""
    if not (HC18_DIR / "training_set").is_dir():
        pytest.skip(
            f"HC18 data not found at {HC18_DIR} (set {DATA_ENV} to the folder holding hc18/)"
        )
    return HC18_DIR
