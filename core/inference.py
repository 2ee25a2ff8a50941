"""Head segmentation with an ONNX model through onnxruntime (no torch).

The model reads `(N, 1, h, w) float32` and writes `(N, 1, h, w)` head probabilities (or logits).
How a frame is brought to the network is read from the model's metadata (written by HC Studio's
exporter, keys `hc_studio.*`); a model without it gets the defaults documented on `ModelInfo`.

A model is refused at load, with the reason, when its input size lies outside
`INPUT_SIDE_RANGE` (a claimed 60000x60000 input would exhaust memory), when it has more than one
output or an output that is not (N, 1, h, w), or when a probe run on a blank input gives
"probabilities" outside 0..1 (or non-finite scores). Every later run is checked the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

DEVICES = ("auto", "cpu", "cuda")
RESIZE_MODES = ("stretch", "letterbox")
OUTPUT_KINDS = ("probability", "logits")
DEFAULT_INPUT_HW = (256, 384)
DEFAULT_MULTIPLE = 16
DEFAULT_MODEL_FILE = "hc_head_ersr_v4.onnx"  # in the hc_studio.models package (MODEL_CARD.md)
# Network input sides HC Studio accepts: below 16 a U-Net has nothing left at its bottleneck;
# 4096 is over ten times the shipped model's 224x320 and keeps one input under 64 MB.
INPUT_SIDE_RANGE = (16, 4096)
MAX_MULTIPLE = 256
# A refining window narrower than the head, or four times as wide, is not a refinement.
REFINE_MARGIN_RANGE = (1.0, 4.0)
PROBABILITY_TOLERANCE = 1e-3  # float rounding around 0 and 1; anything beyond is not a probability
_MAX_CPU_THREADS = 8  # beyond this a small U-Net gains nothing and starves the GUI thread
_DESCRIPTIVE_KEYS = ("method", "data", "date", "validation")


@dataclass(frozen=True)
class ModelInfo:
    """How to feed a model, read from its `hc_studio.*` metadata.

    Defaults for a model without metadata: name = file stem, input size from the model's input
    shape when static else 256x384, 0-1 scaling, "stretch", "probability", multiple 16.
    `normalisation` is {"scale": "0-1"} or {"mean": m, "std": s} applied after 0-1 scaling.
    """

    name: str
    input_height: int
    input_width: int
    normalisation: Mapping[str, object] = field(default_factory=lambda: {"scale": "0-1"})
    resize: str = "stretch"
    output: str = "probability"
    multiple: int = DEFAULT_MULTIPLE
    description: Mapping[str, str] = field(default_factory=dict)
    refiner: str | None = None  # file name of the head-refinement model beside this one
    refine_margin: float = 1.25

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, str], default_name: str, static_hw: tuple[int, int] | None
    ) -> ModelInfo:
        def get(key: str) -> str | None:
            value = metadata.get(f"hc_studio.{key}")
            return value.strip() if value is not None and value.strip() else None

        height, width = static_hw or DEFAULT_INPUT_HW
        info = cls(
            name=get("name") or default_name,
            input_height=_positive_int(get("input_height"), height, "input_height"),
            input_width=_positive_int(get("input_width"), width, "input_width"),
            normalisation=_parse_normalisation(get("normalisation")),
            resize=get("resize") or "stretch",
            output=get("output") or "probability",
            multiple=_positive_int(get("multiple"), DEFAULT_MULTIPLE, "multiple"),
            description={key: get(key) or "" for key in _DESCRIPTIVE_KEYS},
            refiner=get("refiner"),
            refine_margin=_margin(get("refine_margin")),
        )
        if info.resize not in RESIZE_MODES:
            raise ValueError(f"hc_studio.resize must be one of {RESIZE_MODES}, got {info.resize!r}")
        if info.output not in OUTPUT_KINDS:
            raise ValueError(f"hc_studio.output must be one of {OUTPUT_KINDS}, got {info.output!r}")
        info._check_sizes(static_hw)
        return info

    def _check_sizes(self, static_hw: tuple[int, int] | None) -> None:
        low, high = INPUT_SIDE_RANGE
        size = f"{self.input_width}x{self.input_height}"
        if not (low <= self.input_height <= high and low <= self.input_width <= high):
            raise ValueError(
                f"input size {size} (hc_studio.input_height/input_width or the model's input "
                f"shape) lies outside the accepted {low}-{high} pixels a side"
            )
        if self.multiple > MAX_MULTIPLE:
            raise ValueError(f"hc_studio.multiple {self.multiple} is above {MAX_MULTIPLE}")
        if static_hw is None and (
            self.input_height % self.multiple or self.input_width % self.multiple
        ):
            raise ValueError(
                f"input size {size} is not a multiple of hc_studio.multiple {self.multiple}"
            )

    def normalise(self, pixels01: np.ndarray) -> np.ndarray:
        """Apply the model's input normalisation to a 0..1 image."""
        if "mean" in self.normalisation:
            mean = float(self.normalisation["mean"])  # type: ignore[arg-type]
            std = float(self.normalisation["std"])  # type: ignore[arg-type]
            return ((pixels01 - mean) / std).astype(np.float32)
        return pixels01.astype(np.float32, copy=False)


def _margin(text: str | None) -> float:
    if text is None:
        return 1.25
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"hc_studio.refine_margin must be a number, got {text!r}") from None
    if not REFINE_MARGIN_RANGE[0] <= value <= REFINE_MARGIN_RANGE[1]:
        low, high = REFINE_MARGIN_RANGE
        raise ValueError(f"hc_studio.refine_margin {value:g} lies outside {low:g}-{high:g}")
    return value


def _positive_int(text: str | None, default: int, key: str) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"hc_studio.{key} must be an integer, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"hc_studio.{key} must be positive, got {value}")
    return value


def _parse_normalisation(text: str | None) -> dict[str, object]:
    if text is None:
        return {"scale": "0-1"}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"hc_studio.normalisation is not JSON: {text!r}") from None
    if isinstance(parsed, dict) and parsed.get("scale") == "0-1" and "mean" not in parsed:
        return {"scale": "0-1"}
    if isinstance(parsed, dict) and {"mean", "std"} <= parsed.keys():
        mean, std = float(parsed["mean"]), float(parsed["std"])
        if math.isfinite(mean) and math.isfinite(std) and std > 0:
            return {"mean": mean, "std": std}
    raise ValueError(
        'hc_studio.normalisation must be {"scale": "0-1"} or {"mean": m, "std": s>0}, '
        f"got {text!r}"
    )


@dataclass(frozen=True)
class Prediction:
    """The network's output for one frame.

    `prob`: (h, w) float32 in 0..1 at network resolution, covering exactly the frame (letterbox
    padding already cropped away). `frame_shape`: (H, W) of the frame. A network pixel (x, y)
    maps to the frame by each axis's own scale, pixel centres at integers:
    x_frame = (x + 0.5) * scale_x - 0.5 (see `to_frame_xy`).
    """

    prob: np.ndarray
    frame_shape: tuple[int, int]
    network_shape: tuple[int, int]
    # The frame as resized for the network (0..1, before normalisation) when it covers exactly
    # `prob`'s grid (stretch models): the plane check reads it instead of resizing again.
    frame_on_grid: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def scale_x(self) -> float:
        return self.frame_shape[1] / self.prob.shape[1]

    @property
    def scale_y(self) -> float:
        return self.frame_shape[0] / self.prob.shape[0]

    def to_frame_xy(self, points_xy: np.ndarray) -> np.ndarray:
        """(n, 2) network-pixel points (x, y) -> (n, 2) frame-pixel points."""
        points = np.asarray(points_xy, dtype=np.float64)
        scale = np.array([self.scale_x, self.scale_y])
        return (points + 0.5) * scale - 0.5

    def frame_prob(self) -> np.ndarray:
        """(H, W) float32 probability at frame size (bilinear, pixel-centre aligned)."""
        height, width = self.frame_shape
        if self.prob.shape == (height, width):
            return self.prob
        return cv2.resize(self.prob, (width, height), interpolation=cv2.INTER_LINEAR)


class SegmentationEngine:
    """A loaded ONNX segmentation model.

    `device`: "auto" uses CUDA when onnxruntime can really start it, else the CPU; "cuda" fails
    with ValueError when CUDA cannot start; "cpu" never tries CUDA. `provider` says what the
    session really runs on ("CUDAExecutionProvider" or "CPUExecutionProvider").
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "auto",
        threads: int | None = None,
        *,
        load_refiner: bool = True,
        spinning: bool = True,
    ) -> None:
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"{self.model_path}: model file not found")
        self._session = _create_session(self.model_path, device, threads, spinning)
        self.provider: str = self._session.get_providers()[0]
        if device == "cuda" and self.provider != "CUDAExecutionProvider":
            raise ValueError(
                f"CUDA was requested but onnxruntime could not start it (running on "
                f"{self.provider}); use --device cpu or install the CUDA libraries"
            )
        model_input = self._session.get_inputs()[0]
        self._input_name: str = model_input.name
        self._static_hw = _static_hw(model_input.shape)
        metadata = self._session.get_modelmeta().custom_metadata_map or {}
        try:
            self.info = ModelInfo.from_metadata(metadata, self.model_path.stem, self._static_hw)
            _check_output_layout(self._session.get_outputs())
        except ValueError as error:
            raise ValueError(f"{self.model_path}: {error}") from None
        overrides = self._fixed_input_dims(model_input.shape)
        if overrides:
            # Every input of a stretched model has the same size: a session that knows it
            # plans its kernels for it (the shipped model's call went from 28.5 to 25.8 ms).
            self._session = _create_session(self.model_path, device, threads, spinning, overrides)
        self._probe()
        self.refiner: SegmentationEngine | None = None
        if load_refiner:
            self.refiner = self._load_refiner(device, threads)

    def _fixed_input_dims(self, shape: list) -> dict[str, int]:
        """Names of the input's free dimensions -> the size every call gives them ({} when
        the sizes vary: a letterbox model pads each frame to its own multiple of 16)."""
        if self.info.resize != "stretch" or len(shape or []) != 4:
            return {}
        sizes = (1, 1, self.info.input_height, self.info.input_width)
        return {dim: size for dim, size in zip(shape, sizes, strict=True) if isinstance(dim, str)}

    def _load_refiner(self, device: str, threads: int | None) -> SegmentationEngine | None:
        """The second-pass model the metadata names (`core.refine`), checked like this one.

        Only a plain file name in this model's folder is followed: a model file never makes
        HC Studio open a path elsewhere.
        """
        name = self.info.refiner
        if name is None:
            return None
        if Path(name).name != name or name in (".", ".."):
            raise ValueError(
                f"{self.model_path}: hc_studio.refiner must be a file name beside the model, "
                f"got {name!r}"
            )
        path = self.model_path.parent / name
        if not path.is_file():
            raise ValueError(f"{self.model_path}: its refining model {name} is missing beside it")
        # Its worker threads must not spin-wait after a run: they would hold the cores while the
        # first model runs on the next frame (on 2 cores both passes took twice as long).
        refiner = SegmentationEngine(path, device, threads, load_refiner=False, spinning=False)
        if refiner.info.refiner is not None:
            raise ValueError(f"{path}: a refining model cannot name a refiner of its own")
        if refiner.info.input_height != refiner.info.input_width:
            raise ValueError(
                f"{path}: a refining model needs a square input, not "
                f"{refiner.info.input_width}x{refiner.info.input_height}"
            )
        return refiner

    def _probe(self) -> None:
        """Run once on a blank input: the output layout and value range must hold already."""
        hw = self._static_hw or (self.info.input_height, self.info.input_width)
        try:
            self._run(np.zeros(hw, dtype=np.float32))
        except ValueError as error:
            problem = str(error).removeprefix(f"{self.model_path}: ")
            message = f"{self.model_path}: on a probe run with a blank input, {problem}"
            raise ValueError(message) from None

    @property
    def name(self) -> str:
        return self.info.name

    def describe(self) -> str:
        """The model's name, and its refining model's when it has one."""
        if self.refiner is None:
            return self.name
        return f"{self.name} (second pass {self.refiner.name})"

    def predict(self, pixels: np.ndarray) -> Prediction:
        """Segment one frame: `pixels` (H, W) float 0..1 -> Prediction at network resolution."""
        frame = _as_frame(pixels)
        frame_on_grid = None
        if self.info.resize == "letterbox":
            network_input, content_hw = self._letterbox(frame)
        else:
            content_hw = (self.info.input_height, self.info.input_width)
            network_input = frame_on_grid = _resize(frame, content_hw)
        output = self._run(network_input)
        prob = output[: content_hw[0], : content_hw[1]]
        return Prediction(
            prob=np.ascontiguousarray(prob, dtype=np.float32),
            frame_shape=frame.shape,
            network_shape=network_input.shape,
            frame_on_grid=frame_on_grid,
        )

    def predict_frame_prob(self, pixels: np.ndarray) -> np.ndarray:
        """Segment one frame: `pixels` (H, W) float 0..1 -> (H, W) float32 probability."""
        return self.predict(pixels).frame_prob()

    def _letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """Scale keeping the aspect ratio to fit the input size; pad bottom/right with 0.

        Pads to the model's static input size, or else to the next multiple of `multiple`.
        Returns the padded image and the (h, w) of the scaled frame inside it.
        """
        height, width = frame.shape
        scale = min(self.info.input_height / height, self.info.input_width / width)
        content_hw = (max(1, round(height * scale)), max(1, round(width * scale)))
        if self._static_hw:
            padded_hw = self._static_hw
        else:
            multiple = self.info.multiple
            padded_hw = tuple(math.ceil(size / multiple) * multiple for size in content_hw)
        padded = np.zeros(padded_hw, dtype=np.float32)
        padded[: content_hw[0], : content_hw[1]] = _resize(frame, content_hw)
        return padded, content_hw

    def _run(self, network_input: np.ndarray) -> np.ndarray:
        batch = self.info.normalise(network_input)[np.newaxis, np.newaxis]
        (output,) = self._session.run(None, {self._input_name: batch})[:1]
        if output.ndim != 4 or output.shape[:2] != (1, 1) or output.shape[2:] != batch.shape[2:]:
            raise ValueError(
                f"{self.model_path}: expected an output of shape {(1, 1, *batch.shape[2:])}, "
                f"got {tuple(output.shape)}"
            )
        scores = output[0, 0].astype(np.float32, copy=False)
        self._check_scores(scores)
        if self.info.output == "logits":
            # Clip first so exp never overflows; 0/1 at |logit| > 30 anyway in float32.
            scores = 1.0 / (1.0 + np.exp(-np.clip(scores, -30.0, 30.0)))
        return scores

    def _check_scores(self, scores: np.ndarray) -> None:
        """ValueError when the output is not finite, or a "probability" leaves 0..1."""
        if not np.isfinite(scores).all():
            raise ValueError(f"{self.model_path}: the model's output holds NaN or infinity")
        if self.info.output == "probability":
            low, high = float(scores.min()), float(scores.max())
            if low < -PROBABILITY_TOLERANCE or high > 1.0 + PROBABILITY_TOLERANCE:
                raise ValueError(
                    f"{self.model_path}: hc_studio.output is 'probability' but the model's output "
                    f"spans {low:.3g}..{high:.3g}, outside 0..1 (logits? set hc_studio.output)"
                )


def _check_output_layout(outputs: list) -> None:
    """ValueError unless the model has exactly one output shaped (N, 1, H, W)."""
    if len(outputs) != 1:
        names = ", ".join(output.name for output in outputs)
        raise ValueError(f"expected one output (N, 1, H, W), the model has {len(outputs)}: {names}")
    shape = outputs[0].shape  # dims are ints, names or None; [] when not declared
    channels_wrong = len(shape or []) == 4 and isinstance(shape[1], int) and shape[1] != 1
    if shape and (len(shape) != 4 or channels_wrong):
        raise ValueError(f"expected an output of shape (N, 1, H, W), the model declares {shape}")


def _as_frame(pixels: np.ndarray) -> np.ndarray:
    frame = np.asarray(pixels)
    if frame.ndim != 2 or min(frame.shape) < 1:
        raise ValueError(f"expected a grey frame of shape (H, W), got shape {frame.shape}")
    frame = frame.astype(np.float32, copy=False)
    if not np.all(np.isfinite(frame)):
        frame = np.nan_to_num(frame, nan=0.0, posinf=1.0, neginf=0.0)
    return frame


def _resize(frame: np.ndarray, target_hw: tuple[int, int]) -> np.ndarray:
    if frame.shape == tuple(target_hw):
        return frame
    return cv2.resize(frame, (target_hw[1], target_hw[0]), interpolation=cv2.INTER_AREA)


def _static_hw(shape: list) -> tuple[int, int] | None:
    if len(shape) != 4:
        raise ValueError(f"expected a model input of shape (N, 1, H, W), got {shape}")
    height, width = shape[2], shape[3]
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        return height, width
    return None


def cpu_threads() -> int:
    """Threads for onnxruntime on the CPU: the cores this process may use, at most 8."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, _MAX_CPU_THREADS))


def _cuda_driver_present() -> bool:
    # onnxruntime-gpu lists CUDA even on machines without a GPU; without the driver library
    # trying it only prints alarming errors.
    for name in ("libcuda.so.1", "nvcuda.dll"):
        with contextlib.suppress(OSError):
            ctypes.CDLL(name)
            return True
    return False


@contextlib.contextmanager
def _quiet_onnxruntime(ort) -> Iterator[None]:
    """Silence onnxruntime's logger while probing CUDA in "auto" mode (it falls back anyway)."""
    ort.set_default_logger_severity(4)
    try:
        yield
    finally:
        ort.set_default_logger_severity(2)


def _create_session(
    model_path: Path,
    device: str,
    threads: int | None,
    spinning: bool = True,
    fixed_dims: Mapping[str, int] | None = None,
):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for name, size in (fixed_dims or {}).items():
        options.add_free_dimension_override_by_name(name, size)
    providers = ["CPUExecutionProvider"]
    want_cuda = device == "cuda" or (device == "auto" and _cuda_driver_present())
    if want_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    quiet = _quiet_onnxruntime(ort) if device == "auto" else contextlib.nullcontext()
    try:
        with quiet:
            return ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(f"{model_path}: not a usable ONNX model ({first_line})") from None


def default_model_path() -> Path | None:
    """The ONNX model shipped in the installed `hc_studio.models` package, or None.

    `DEFAULT_MODEL_FILE` when it is there (the other files beside it are its refining model and
    the float weights training starts from); otherwise the folder's only model. Raises
    ValueError when, without it, the folder holds several models (which one is meant is unclear).
    """
    folder = resources.files("hc_studio.models")
    default = Path(str(folder.joinpath(DEFAULT_MODEL_FILE)))
    if default.is_file():
        return default
    models = sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".onnx"))
    if not models:
        return None
    if len(models) > 1:
        names = ", ".join(model.name for model in models)
        raise ValueError(f"several models are installed ({names}); choose one with --model")
    return models[0]
