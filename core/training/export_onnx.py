"""Export a trained network to one self-contained ONNX file, checked against torch.

The graph takes `image` (N, 1, H, W) float32 in 0..1 (H, W any multiples of 16, stretched from
the frame) and returns `probability` (N, 1, H, W) (sigmoid inside). Metadata keys `hc_studio.*`
describe it for `core.inference.SegmentationEngine`. Every export runs the file in onnxruntime
on random inputs of two sizes and fails (`ExportParityError`) if the probabilities differ from
torch's by more than the tolerance. Nothing is printed on stdout (the training JSON channel).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import json
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hc_studio.models.networks import build_network, size_multiple
from hc_studio.models.unet import ExportWrapper
from torch import nn

from ..atomic import atomic_write_bytes
from ..run_folder import RunFolder
from .checkpoint import CheckpointError, load_checkpoint

ARCHITECTURE_KEY = "hc_studio.architecture"
# "flip-average" when the graph averages the network's output on the image and its mirror
# (`ExportWrapper.flip_average`), "none" otherwise; kept when a model is exported again.
TEST_TIME_KEY = "hc_studio.test_time"
FLIP_AVERAGE = "flip-average"
# An int8 model's convolutions cannot be turned back into the U-Net's layers (batch norm is
# folded in): it names the float model it was quantised from, beside it, to train from.
FLOAT_WEIGHTS_KEY = "hc_studio.float_weights"
PARITY_TOLERANCE = 1e-4  # max abs difference of probabilities, onnxruntime vs torch
# Weights smaller than this are written as exactly 0. Adam with weight decay leaves millions of
# weights at 1e-30..1e-12 that change no output, but their products with the activations are
# denormal floats, which x86 handles many times slower: a network that had 2.1 M of its 3.3 M
# weights below 1e-10 ran in 72 ms a call instead of 22 (docs/benchmarks.md 3o). Zeroing those
# below 1e-12 gave bit-identical outputs at 22 ms; the parity check still compares with torch.
NEGLIGIBLE_WEIGHT = 1e-12
WEIGHT_OPERATORS = ("Conv", "ConvTranspose", "Gemm", "MatMul")  # input 1 is the weight
OPSET = 17


class ExportParityError(RuntimeError):
    """The exported graph does not reproduce the torch network."""


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    input_height: int
    input_width: int
    method: str = ""
    data: str = ""
    validation: Mapping[str, Any] = field(default_factory=dict)
    architecture: Mapping[str, Any] = field(default_factory=dict)  # models.networks config
    date: str = field(default_factory=lambda: datetime.date.today().isoformat())
    flip_average: bool = False  # see `ExportWrapper`

    def as_properties(self) -> dict[str, str]:
        """The `hc_studio.*` metadata_props of the ONNX file."""
        return {
            "hc_studio.name": self.name,
            "hc_studio.input_height": str(self.input_height),
            "hc_studio.input_width": str(self.input_width),
            "hc_studio.normalisation": json.dumps({"scale": "0-1"}),
            "hc_studio.resize": "stretch",
            "hc_studio.output": "probability",
            "hc_studio.multiple": str(size_multiple(self.architecture)),
            "hc_studio.method": self.method,
            "hc_studio.data": self.data,
            "hc_studio.date": self.date,
            "hc_studio.validation": json.dumps(dict(self.validation)),
            ARCHITECTURE_KEY: json.dumps(dict(self.architecture)),
            TEST_TIME_KEY: FLIP_AVERAGE if self.flip_average else "none",
        }


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (Python and C level) to stderr for the duration."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout file descriptor (e.g. captured): Python level only
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _graph_bytes(wrapper: nn.Module, image_size: tuple[int, int]) -> bytes:
    """The ONNX graph with dynamic batch, height and width.

    The TorchScript exporter: the dynamo exporter gives the same graph here but takes ten times
    longer. Constant folding is off so that BatchNorm stays a node with the network's own
    parameter names (onnxruntime fuses it into the convolutions when it loads the graph), which
    lets `load_onnx_weights` recover the exact weights to fine-tune from.
    """
    example = torch.rand(1, 1, *image_size)
    buffer = io.BytesIO()
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            buffer,
            dynamo=False,
            input_names=["image"],
            output_names=["probability"],
            dynamic_axes={"image": dynamic, "probability": dynamic},
            opset_version=OPSET,
            do_constant_folding=False,
        )
    return buffer.getvalue()


def flush_negligible_weights(model) -> int:
    """Set the weights of the convolutions and matrix products of an `onnx.ModelProto` whose
    magnitude is below `NEGLIGIBLE_WEIGHT` to exactly 0, in place; returns how many changed.

    Only the weight operands: those are what multiply activations. BatchNorm's statistics and
    every other initializer stay as trained (`load_onnx_weights` gives them back exactly)."""
    import numpy as np
    from onnx import numpy_helper

    weights = {
        node.input[1]
        for node in model.graph.node
        if node.op_type in WEIGHT_OPERATORS and len(node.input) > 1
    }
    changed = 0
    for index, initializer in enumerate(model.graph.initializer):
        if initializer.name not in weights:
            continue
        values = numpy_helper.to_array(initializer)
        if values.dtype not in (np.float32, np.float64):
            continue
        negligible = (values != 0) & (np.abs(values) < NEGLIGIBLE_WEIGHT)
        count = int(negligible.sum())
        if count:
            flushed = np.where(negligible, values.dtype.type(0), values)
            model.graph.initializer[index].CopyFrom(
                numpy_helper.from_array(flushed, initializer.name)
            )
            changed += count
    return changed


def _finished_graph(graph: bytes, properties: Mapping[str, str]) -> bytes:
    import onnx

    model = onnx.load_from_string(graph)
    flush_negligible_weights(model)
    del model.metadata_props[:]
    for key, value in properties.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


def parity_check(
    wrapper: nn.Module, graph: bytes, image_size: tuple[int, int], tolerance: float
) -> float:
    """Max abs difference of onnxruntime vs torch on random inputs of two sizes; raises
    ExportParityError above `tolerance`."""
    import onnxruntime

    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    h, w = image_size
    worst = 0.0
    step = size_multiple(getattr(wrapper.network, "config", {}))
    for shape in ((2, 1, h, w), (1, 1, h + step, w + 2 * step)):
        image = torch.rand(shape, generator=generator)
        with torch.no_grad():
            expected = wrapper(image).numpy()
        (actual,) = session.run(["probability"], {"image": image.numpy()})
        worst = max(worst, float(np.abs(actual - expected).max()))
    if not worst <= tolerance:
        raise ExportParityError(
            f"ONNX export does not match torch: max probability difference {worst:.2e} "
            f"> {tolerance:.0e}"
        )
    return worst


def export_network(
    network: nn.Module,
    path: str | Path,
    metadata: ModelMetadata,
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """Write `network` (logits out) as ONNX (sigmoid inside) to `path` atomically.

    Returns the parity check's max abs difference; raises ExportParityError without writing the
    file when the check fails.
    """
    image_size = (metadata.input_height, metadata.input_width)
    wrapper = ExportWrapper(copy.deepcopy(network).cpu().float(), metadata.flip_average).eval()
    with stdout_to_stderr():
        graph = _finished_graph(_graph_bytes(wrapper, image_size), metadata.as_properties())
        worst = parity_check(wrapper, graph, image_size, tolerance)
    atomic_write_bytes(path, graph)
    return worst


def export_checkpoint(
    checkpoint_path: str | Path,
    onnx_path: str | Path,
    name: str | None = None,
    flip_average: bool = False,
) -> Path:
    """Export the student network of a training checkpoint; returns `onnx_path`.

    `flip_average`: the graph averages the network over the image and its mirror
    (`ExportWrapper`).

    The model's name defaults to the run folder's name (checkpoints live in RUN_DIR/checkpoints).
    Raises CheckpointError for an unusable file, ExportParityError if the graph is off.
    """
    checkpoint_path, onnx_path = Path(checkpoint_path), Path(onnx_path)
    state = load_checkpoint(checkpoint_path)
    try:
        config = state["model"]["config"]
        network = build_network(config)
        network.load_state_dict(state["model"]["state"])
        height, width = state["settings"]["image_size"]
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{checkpoint_path.name}: incomplete checkpoint ({error})") from None
    if name is None:
        folder = RunFolder.of_checkpoint(checkpoint_path)
        name = folder.name if folder is not None else checkpoint_path.stem
    metadata = ModelMetadata(
        name=name,
        input_height=int(height),
        input_width=int(width),
        method=state.get("method", {}).get("name", ""),
        data=state.get("data", ""),
        validation=state.get("best") or {},
        architecture=config,
        flip_average=flip_average,
    )
    export_network(network, onnx_path, metadata)
    return onnx_path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The `hc_studio.*` metadata_props of an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def summarise_evaluation(report: Mapping[str, Any]) -> dict[str, Any]:
    """The validation figures a model carries, from an `hc-studio evaluate` JSON report."""
    figures: dict[str, Any] = {"frames": report.get("frames")}
    for key in ("dice", "iou", "hd95_mm", "asd_mm", "hc_abs_diff_mm", "hc_diff_mm"):
        stats = report.get(key) or {}
        for stat in ("mean", "std", "median", "p95"):
            if stats.get(stat) is not None:
                figures[f"{key}_{stat}"] = round(float(stats[stat]), 5)
    figures["failures"] = len(report.get("failures") or [])
    return figures


def reexport_onnx(
    source: str | Path,
    onnx_path: str | Path,
    name: str | None = None,
    data: str | None = None,
    validation: Mapping[str, Any] | None = None,
    flip_average: bool | None = None,
) -> Path:
    """Export an HC Studio ONNX model again with new descriptive metadata; returns `onnx_path`.

    The weights and architecture come from `source` (see `load_onnx_weights`), so the new file
    is checked against torch like any export; its training method and date are kept, and its
    flip averaging unless `flip_average` says otherwise.
    """
    source, onnx_path = Path(source), Path(onnx_path)
    config, state = load_onnx_weights(source)
    network = build_network(config)
    network.load_state_dict(state)
    old = read_metadata(source)
    metadata = ModelMetadata(
        name=name or old.get("hc_studio.name", source.stem),
        input_height=int(old["hc_studio.input_height"]),
        input_width=int(old["hc_studio.input_width"]),
        method=old.get("hc_studio.method", ""),
        data=data if data is not None else old.get("hc_studio.data", ""),
        validation=(
            validation
            if validation is not None
            else json.loads(old.get("hc_studio.validation") or "{}")
        ),
        architecture=config,
        date=old.get("hc_studio.date") or datetime.date.today().isoformat(),
        flip_average=(
            flip_average if flip_average is not None else old.get(TEST_TIME_KEY) == FLIP_AVERAGE
        ),
    )
    export_network(network, onnx_path, metadata)
    return onnx_path


def load_onnx_weights(
    path: str | Path, follow_float_weights: bool = True
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(architecture config, state_dict) of a model exported by `export_network`, to fine-tune
    from it.

    Raises CheckpointError for an ONNX file without the architecture metadata (not exported by
    HC Studio) or whose weights do not match it.
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as error:  # noqa: BLE001 (protobuf raises several kinds)
        raise CheckpointError(f"{path.name}: not a readable ONNX file ({error})") from None
    properties = {p.key: p.value for p in model.metadata_props}
    float_name = properties.get(FLOAT_WEIGHTS_KEY, "").strip()
    if float_name:
        if Path(float_name).name != float_name or float_name in (".", "..", path.name):
            raise CheckpointError(
                f"{path.name}: {FLOAT_WEIGHTS_KEY} must name another file beside it, "
                f"got {float_name!r}"
            )
        if not follow_float_weights:
            raise CheckpointError(f"{path.name}: float weights that name float weights again")
        if not (path.parent / float_name).is_file():
            raise CheckpointError(
                f"{path.name}: the float weights it names ({float_name}) are missing beside it"
            )
        return load_onnx_weights(path.parent / float_name, follow_float_weights=False)
    if ARCHITECTURE_KEY not in properties:
        raise CheckpointError(
            f"{path.name}: no {ARCHITECTURE_KEY} metadata; only models exported by HC Studio "
            "can initialise training"
        )
    config = json.loads(properties[ARCHITECTURE_KEY])
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:  # the exporter shares equal tensors through Identity nodes
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    network = build_network(config)
    state = {}
    for key, tensor in network.state_dict().items():
        exported = values.get(f"network.{key}")
        if exported is None:
            if key.endswith("num_batches_tracked"):
                state[key] = tensor
                continue
            raise CheckpointError(f"{path.name}: weight {key} not found in the graph")
        state[key] = torch.from_numpy(np.array(exported)).to(tensor.dtype).reshape(tensor.shape)
    return config, state
