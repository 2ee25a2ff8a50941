"""SegmentationEngine: metadata, resizing modes, output kinds, providers, model lookup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hc_studio.core import inference
from hc_studio.core.inference import Prediction, SegmentationEngine, default_model_path

FRAME_HW = (270, 400)
DISK_CENTRE_XY = (231.3, 118.6)
DISK_RADIUS = 60.0


def disk_frame(shape=FRAME_HW, centre_xy=DISK_CENTRE_XY, radius=DISK_RADIUS) -> np.ndarray:
    """Background 0.1, a bright disk (0.9): what the threshold graph should segment."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    inside = (cols - centre_xy[0]) ** 2 + (rows - centre_xy[1]) ** 2 <= radius**2
    return np.where(inside, 0.9, 0.1).astype(np.float32)


def weighted_centre_xy(prob: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[: prob.shape[0], : prob.shape[1]]
    weights = prob / prob.sum()
    return np.array([(cols * weights).sum(), (rows * weights).sum()])


@pytest.fixture
def with_metadata(tiny_model_metadata):
    """The tiny model's metadata with some `hc_studio.*` keys changed."""

    def change(**changes: str) -> dict[str, str]:
        metadata = dict(tiny_model_metadata)
        metadata.update({f"hc_studio.{key}": value for key, value in changes.items()})
        return metadata

    return change


def test_engine_reads_metadata_and_runs_on_cpu(tiny_onnx_model: Path) -> None:
    engine = SegmentationEngine(tiny_onnx_model, device="cpu")
    assert engine.name == "tiny-threshold"
    assert (engine.info.input_height, engine.info.input_width) == (128, 192)
    assert engine.info.resize == "stretch"
    assert engine.info.multiple == 16
    assert engine.info.description["method"] == "threshold (test graph)"
    assert engine.provider == "CPUExecutionProvider"


def test_stretch_prediction_maps_back_axis_by_axis(tiny_onnx_model: Path) -> None:
    engine = SegmentationEngine(tiny_onnx_model, device="cpu")
    prediction = engine.predict(disk_frame())
    assert prediction.prob.shape == (128, 192)
    assert prediction.prob.dtype == np.float32
    assert prediction.frame_shape == FRAME_HW
    # The two axes have different scales (270/128 != 400/192): a single factor would miss.
    assert prediction.scale_x == pytest.approx(400 / 192)
    assert prediction.scale_y == pytest.approx(270 / 128)
    centre = prediction.to_frame_xy(weighted_centre_xy(prediction.prob)[np.newaxis])[0]
    np.testing.assert_allclose(centre, DISK_CENTRE_XY, atol=0.3)


def test_frame_prob_covers_the_disk(tiny_onnx_model: Path) -> None:
    engine = SegmentationEngine(tiny_onnx_model, device="cpu")
    prob = engine.predict_frame_prob(disk_frame())
    assert prob.shape == FRAME_HW
    assert prob.dtype == np.float32
    area = (prob > 0.5).sum()
    assert area == pytest.approx(np.pi * DISK_RADIUS**2, rel=0.02)
    cx, cy = DISK_CENTRE_XY
    assert prob[round(cy), round(cx)] > 0.99
    assert prob[5, 5] < 0.01


def test_letterbox_keeps_aspect_and_crops_padding(
    tmp_path: Path, onnx_model_factory, with_metadata
) -> None:
    model = onnx_model_factory(tmp_path / "lb.onnx", with_metadata(resize="letterbox"))
    engine = SegmentationEngine(model, device="cpu")
    prediction = engine.predict(disk_frame())
    # 270x400 scaled by min(128/270, 192/400) = 0.474 -> 128x190, padded to 128x192.
    assert prediction.prob.shape == (128, 190)
    assert prediction.network_shape == (128, 192)
    centre = prediction.to_frame_xy(weighted_centre_xy(prediction.prob)[np.newaxis])[0]
    np.testing.assert_allclose(centre, DISK_CENTRE_XY, atol=0.3)
    area = (prediction.frame_prob() > 0.5).sum()
    assert area == pytest.approx(np.pi * DISK_RADIUS**2, rel=0.02)


def test_logits_and_mean_std_models_give_the_same_probability(
    tmp_path: Path, onnx_model_factory, tiny_onnx_model: Path, with_metadata
) -> None:
    frame = disk_frame()
    reference = SegmentationEngine(tiny_onnx_model, device="cpu").predict(frame).prob
    logits_model = onnx_model_factory(
        tmp_path / "logits.onnx", with_metadata(output="logits"), output="logits"
    )
    normalised_model = onnx_model_factory(
        tmp_path / "norm.onnx",
        with_metadata(normalisation=json.dumps({"mean": 0.3, "std": 0.2})),
        mean=0.3,
        std=0.2,
    )
    for model in (logits_model, normalised_model):
        prob = SegmentationEngine(model, device="cpu").predict(frame).prob
        np.testing.assert_allclose(prob, reference, atol=1e-4)


def test_foreign_model_with_static_shape_uses_it(tmp_path: Path, onnx_model_factory) -> None:
    model = onnx_model_factory(tmp_path / "foreign.onnx", metadata=None, static_hw=(96, 144))
    engine = SegmentationEngine(model, device="cpu")
    assert engine.name == "foreign"
    assert (engine.info.input_height, engine.info.input_width) == (96, 144)
    assert engine.info.resize == "stretch" and engine.info.output == "probability"
    assert engine.predict(disk_frame()).prob.shape == (96, 144)


def test_foreign_model_with_dynamic_shape_gets_default_size(
    tmp_path: Path, onnx_model_factory
) -> None:
    model = onnx_model_factory(tmp_path / "dynamic.onnx", metadata=None)
    engine = SegmentationEngine(model, device="cpu")
    assert engine.predict(disk_frame()).prob.shape == inference.DEFAULT_INPUT_HW
    assert engine.info.multiple == inference.DEFAULT_MULTIPLE


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("resize", "crop"),
        ("output", "mask"),
        ("input_height", "tall"),
        ("normalisation", json.dumps({"mean": 0.5, "std": 0})),
        ("normalisation", "not json"),
    ],
)
def test_bad_metadata_names_the_model(
    tmp_path: Path, onnx_model_factory, with_metadata, key, value
) -> None:
    model = onnx_model_factory(tmp_path / "bad.onnx", with_metadata(**{key: value}))
    with pytest.raises(ValueError, match=r"bad\.onnx.*" + key):
        SegmentationEngine(model, device="cpu")


def test_unreadable_and_missing_models_fail_clearly(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf")
    with pytest.raises(ValueError, match="garbage.onnx: not a usable ONNX model"):
        SegmentationEngine(garbage, device="cpu")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        SegmentationEngine(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="device"):
        SegmentationEngine(garbage, device="gpu")


def test_auto_device_reports_the_provider_it_really_got(tiny_onnx_model: Path) -> None:
    engine = SegmentationEngine(tiny_onnx_model, device="auto")
    assert engine.provider in ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert engine.provider == engine._session.get_providers()[0]


def test_cuda_request_without_cuda_is_an_error(tiny_onnx_model: Path) -> None:
    if SegmentationEngine(tiny_onnx_model, device="auto").provider == "CUDAExecutionProvider":
        pytest.skip("CUDA works here")
    with pytest.raises(ValueError, match="CUDA was requested"):
        SegmentationEngine(tiny_onnx_model, device="cuda")


def test_cpu_threads_are_bounded(tiny_onnx_model: Path) -> None:
    assert 1 <= inference.cpu_threads() <= 8
    engine = SegmentationEngine(tiny_onnx_model, device="cpu", threads=1)
    assert engine._session.get_session_options().intra_op_num_threads == 1


def test_predict_rejects_non_grey_frames(tiny_onnx_model: Path) -> None:
    engine = SegmentationEngine(tiny_onnx_model, device="cpu")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        engine.predict(np.zeros((10, 10, 3), np.float32))


def test_prediction_mapping_uses_pixel_centres() -> None:
    prediction = Prediction(np.zeros((10, 20), np.float32), (40, 40), (10, 20))
    mapped = prediction.to_frame_xy(np.array([[0.0, 0.0], [19.0, 9.0]]))
    # Network pixel 0 covers frame pixels 0..1 (x) / 0..3 (y): its centre is at 0.5 / 1.5.
    np.testing.assert_allclose(mapped, [[0.5, 1.5], [38.5, 37.5]])


@pytest.mark.parametrize("count", [0, 1, 2])
def test_default_model_path(tmp_path: Path, monkeypatch, count: int) -> None:
    for index in range(count):
        (tmp_path / f"model{index}.onnx").write_bytes(b"")
    (tmp_path / "MODEL_CARD.md").write_text("card")
    monkeypatch.setattr(inference.resources, "files", lambda package: tmp_path)
    if count == 0:
        assert default_model_path() is None
    elif count == 1:
        assert default_model_path() == tmp_path / "model0.onnx"
    else:
        with pytest.raises(ValueError, match="several models"):
            default_model_path()


def test_the_default_model_file_wins_over_its_refiner_and_float_weights(
    tmp_path: Path, monkeypatch
) -> None:
    for name in (inference.DEFAULT_MODEL_FILE, "hc_head_v2_refine.onnx", "older_float.onnx"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(inference.resources, "files", lambda package: tmp_path)
    assert default_model_path() == tmp_path / inference.DEFAULT_MODEL_FILE


def write_graph_model(
    path: Path,
    nodes: list,
    outputs: list[tuple[str, list]],
    metadata: dict[str, str] | None = None,
    constants: dict[str, float] | None = None,
) -> Path:
    """An ONNX model reading `image` (N, 1, H, W) with the given nodes and declared outputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in outputs],
        initializer=[
            numpy_helper.from_array(np.array(value, dtype=np.float32), name)
            for name, value in (constants or {}).items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def affine_model(path: Path, scale: float, offset: float, metadata=None) -> Path:
    """output = image * scale + offset, declared (N, 1, H, W)."""
    from onnx import helper

    nodes = [
        helper.make_node("Mul", ["image", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], ["scores"]),
    ]
    constants = {"scale": scale, "offset": offset}
    return write_graph_model(path, nodes, [("scores", ["N", 1, "H", "W"])], metadata, constants)


def test_a_huge_input_size_in_the_metadata_is_refused(
    tmp_path: Path, onnx_model_factory, with_metadata
) -> None:
    model = onnx_model_factory(
        tmp_path / "huge.onnx", with_metadata(input_height="60000", input_width="60000")
    )
    with pytest.raises(ValueError, match=r"huge\.onnx: input size 60000x60000 .* 16-4096"):
        SegmentationEngine(model, device="cpu")


def test_a_huge_static_input_shape_is_refused(tmp_path: Path, onnx_model_factory) -> None:
    model = onnx_model_factory(tmp_path / "static.onnx", static_hw=(60000, 60000))
    with pytest.raises(ValueError, match=r"static\.onnx: input size 60000x60000"):
        SegmentationEngine(model, device="cpu")


def test_an_input_size_off_the_multiple_is_refused(
    tmp_path: Path, onnx_model_factory, with_metadata
) -> None:
    model = onnx_model_factory(tmp_path / "odd.onnx", with_metadata(input_height="100"))
    with pytest.raises(ValueError, match=r"odd\.onnx: input size 192x100 is not a multiple of"):
        SegmentationEngine(model, device="cpu")


def test_a_two_output_model_is_refused(tmp_path: Path) -> None:
    from onnx import helper

    nodes = [
        helper.make_node("Sigmoid", ["image"], ["probability"]),
        helper.make_node("Identity", ["image"], ["logits"]),
    ]
    shape = ["N", 1, "H", "W"]
    model = write_graph_model(
        tmp_path / "two.onnx", nodes, [("probability", shape), ("logits", shape)]
    )
    with pytest.raises(ValueError, match=r"two\.onnx: expected one output .* has 2: probability"):
        SegmentationEngine(model, device="cpu")


@pytest.mark.parametrize("declared", [["N", 2, "H", "W"], ["N", "C", "H", "W"]])
def test_a_two_channel_output_is_refused(tmp_path: Path, declared: list) -> None:
    from onnx import helper

    nodes = [
        helper.make_node("Sigmoid", ["image"], ["p"]),
        helper.make_node("Concat", ["p", "p"], ["scores"], axis=1),
    ]
    model = write_graph_model(tmp_path / "channels.onnx", nodes, [("scores", declared)])
    with pytest.raises(ValueError, match=r"channels\.onnx: .*output.* shape"):
        SegmentationEngine(model, device="cpu")


def test_probabilities_above_one_on_the_probe_are_refused(tmp_path: Path) -> None:
    model = affine_model(tmp_path / "scores.onnx", scale=1.0, offset=3.0)
    with pytest.raises(ValueError, match=r"scores\.onnx: .*probe.*spans 3\.\.3, outside 0\.\.1"):
        SegmentationEngine(model, device="cpu")


def test_probabilities_above_one_on_a_real_frame_are_an_error(tmp_path: Path) -> None:
    model = affine_model(tmp_path / "gain.onnx", scale=3.0, offset=0.0)
    engine = SegmentationEngine(model, device="cpu")  # 0 on the blank probe: fine so far
    with pytest.raises(ValueError, match=r"gain\.onnx: .*'probability' .* outside 0\.\.1"):
        engine.predict(disk_frame())


def test_the_same_scores_declared_as_logits_are_accepted(tmp_path: Path) -> None:
    metadata = {"hc_studio.output": "logits"}
    model = affine_model(tmp_path / "logits.onnx", scale=1.0, offset=3.0, metadata=metadata)
    engine = SegmentationEngine(model, device="cpu")
    frame = np.full((128, 192), 0.1, np.float32)  # the network size: no resampling
    expected = 1.0 / (1.0 + np.exp(-3.1))
    np.testing.assert_allclose(engine.predict(frame).prob, expected, rtol=1e-5)


def test_non_finite_output_is_refused(tmp_path: Path) -> None:
    from onnx import helper

    nodes = [helper.make_node("Div", ["image", "image"], ["scores"])]  # 0 / 0 on the probe
    model = write_graph_model(tmp_path / "nan.onnx", nodes, [("scores", ["N", 1, "H", "W"])])
    with pytest.raises(ValueError, match=r"nan\.onnx: .*NaN or infinity"):
        SegmentationEngine(model, device="cpu")


def test_a_stretched_model_runs_in_a_session_planned_for_its_one_input_size(
    tmp_path: Path, onnx_model_factory, tiny_model_metadata
) -> None:
    stretched = SegmentationEngine(onnx_model_factory(tmp_path / "s.onnx", tiny_model_metadata))
    assert stretched._fixed_input_dims(["N", 1, "H", "W"]) == {"N": 1, "H": 128, "W": 192}
    assert stretched.predict(disk_frame()).prob.shape == (128, 192)
    letterbox_metadata = {**tiny_model_metadata, "hc_studio.resize": "letterbox"}
    letterbox = SegmentationEngine(onnx_model_factory(tmp_path / "l.onnx", letterbox_metadata))
    assert letterbox._fixed_input_dims(["N", 1, "H", "W"]) == {}
    assert letterbox.predict(disk_frame((300, 200))).prob.shape == (128, 85)
