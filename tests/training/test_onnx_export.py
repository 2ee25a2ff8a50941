"""ONNX export: one file, metadata, parity with torch, weights recoverable for --init."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from hc_studio.core.cli import main
from hc_studio.core.run_folder import RunFolder
from hc_studio.core.training import export_onnx
from hc_studio.core.training.checkpoint import CheckpointError, save_checkpoint
from hc_studio.core.training.export_onnx import (
    ExportParityError,
    ModelMetadata,
    export_network,
    load_onnx_weights,
)
from hc_studio.models.unet import UNet

REQUIRED_KEYS = [
    "name", "input_height", "input_width", "normalisation", "resize", "output", "multiple",
    "method", "data", "date", "validation",
]  # fmt: skip


def _trained_looking_net() -> UNet:
    torch.manual_seed(0)
    net = UNet(width=4)
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(4, 1, 32, 48) * 3)  # non-trivial BatchNorm statistics
    return net


def test_export_writes_one_file_with_metadata_matching_torch(tmp_path) -> None:
    net = _trained_looking_net()
    path = tmp_path / "model.onnx"
    metadata = ModelMetadata(
        "tiny", 32, 48, method="supervised", validation={"dice": 0.9}, architecture=net.config
    )
    worst = export_network(net, path, metadata)
    assert worst <= 1e-4 and list(tmp_path.iterdir()) == [path]
    model = onnx.load(str(path))
    properties = {p.key: p.value for p in model.metadata_props}
    for key in REQUIRED_KEYS:
        assert f"hc_studio.{key}" in properties
    assert json.loads(properties["hc_studio.normalisation"]) == {"scale": "0-1"}
    assert properties["hc_studio.output"] == "probability"
    assert properties["hc_studio.multiple"] == "16"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).random((1, 1, 64, 80), dtype=np.float32)
    (probability,) = session.run(["probability"], {"image": image})
    with torch.no_grad():
        expected = torch.sigmoid(net.eval()(torch.from_numpy(image))).numpy()
    assert np.abs(probability - expected).max() < 1e-4


def test_exported_weights_load_back_exactly(tmp_path) -> None:
    net = _trained_looking_net()
    path = tmp_path / "model.onnx"
    export_network(net, path, ModelMetadata("tiny", 32, 48, architecture=net.config))
    config, state = load_onnx_weights(path)
    assert config == net.config
    for key, value in net.state_dict().items():
        if not key.endswith("num_batches_tracked"):  # a counter, not part of the graph
            assert torch.equal(state[key], value), key


def test_negligible_weights_are_written_as_zero(tmp_path) -> None:
    """Weights below 1e-12 change no output, but their products are denormal floats that the
    CPU handles many times slower: the file holds exact zeros there, and the rest as trained."""
    net = _trained_looking_net()
    first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        flat = first_conv.weight.view(-1)
        flat[:3] = torch.tensor([1e-20, -1e-13, 1e-11])
    path = tmp_path / "model.onnx"
    worst = export_network(net, path, ModelMetadata("tiny", 32, 48, architecture=net.config))
    assert worst <= 1e-4
    _, state = load_onnx_weights(path)
    name = next(k for k, v in net.named_parameters() if v is first_conv.weight)
    written = state[name].view(-1)
    assert written[:2].tolist() == [0.0, 0.0]
    assert written[2].item() == pytest.approx(1e-11)
    assert torch.equal(written[3:], first_conv.weight.view(-1)[3:])
    for key, value in net.state_dict().items():  # the rest, BatchNorm included, as trained
        if key != name and not key.endswith("num_batches_tracked"):
            assert torch.equal(state[key], value), key
    model = onnx.load(str(path))
    assert export_onnx.flush_negligible_weights(model) == 0  # nothing negligible is left


def test_a_parity_failure_raises_and_writes_nothing(tmp_path, monkeypatch) -> None:
    original = export_onnx._finished_graph

    def corrupt(graph: bytes, properties) -> bytes:
        model = onnx.load_from_string(original(graph, properties))
        weight = next(t for t in model.graph.initializer if t.name.endswith("head.weight"))
        weight.raw_data = (onnx.numpy_helper.to_array(weight) * 5).astype(np.float32).tobytes()
        return model.SerializeToString()

    monkeypatch.setattr(export_onnx, "_finished_graph", corrupt)
    path = tmp_path / "model.onnx"
    with pytest.raises(ExportParityError, match="does not match torch"):
        export_network(_trained_looking_net(), path, ModelMetadata("tiny", 32, 48))
    assert not path.exists()


def test_export_command_exports_a_checkpoint(tmp_path, capsys) -> None:
    net = _trained_looking_net()
    checkpoint = RunFolder(tmp_path / "run").best_checkpoint
    save_checkpoint(
        checkpoint,
        {
            "model": {"config": net.config, "state": net.state_dict()},
            "settings": {"image_size": [32, 48]},
            "method": {"name": "mean-teacher"},
            "best": {"dice": 0.5},
            "data": "phantoms",
        },
    )
    out = tmp_path / "exported.onnx"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    properties = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert properties["hc_studio.name"] == "run"
    assert properties["hc_studio.method"] == "mean-teacher"
    assert json.loads(properties["hc_studio.validation"]) == {"dice": 0.5}


def test_export_command_reports_a_bad_checkpoint(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "--out", str(tmp_path / "m.onnx")]) != 0
    assert "bad.pt" in capsys.readouterr().err


def test_export_command_renames_an_onnx_model_with_evaluated_figures(tmp_path) -> None:
    source = tmp_path / "run.onnx"
    net = _trained_looking_net()
    export_network(
        net, source, ModelMetadata("run", 32, 48, method="ersr", architecture=net.config)
    )
    report = tmp_path / "eval.json"
    report.write_text(
        json.dumps(
            {
                "frames": 3,
                "dice": {"mean": 0.97, "std": 0.01, "median": 0.98},
                "hc_abs_diff_mm": {"mean": 1.9, "std": 1.5, "median": 1.6, "p95": 5.3},
                "failures": [],
            }
        )
    )
    out = tmp_path / "shipped.onnx"
    argv = ["export", str(source), "--out", str(out), "--name", "shipped", "--data", "phantoms"]
    assert main([*argv, "--validation", str(report)]) == 0
    properties = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert properties["hc_studio.name"] == "shipped"
    assert properties["hc_studio.method"] == "ersr"  # kept from the source
    assert properties["hc_studio.data"] == "phantoms"
    figures = json.loads(properties["hc_studio.validation"])
    assert figures["dice_mean"] == 0.97 and figures["hc_abs_diff_mm_p95"] == 5.3
    _, original = load_onnx_weights(source)
    _, copied = load_onnx_weights(out)
    assert all(torch.equal(original[key], copied[key]) for key in original)


def _with_float_weights(source: Path, target: Path, name: str) -> Path:
    """A copy of `source` (standing in for its int8 version) naming `name` as its float weights."""
    import onnx

    model = onnx.load(str(source))
    entry = model.metadata_props.add()
    entry.key, entry.value = export_onnx.FLOAT_WEIGHTS_KEY, name
    onnx.save(model, str(target))
    return target


def test_a_quantised_model_trains_from_the_float_weights_it_names(tmp_path) -> None:
    net = _trained_looking_net()
    float_path = tmp_path / "float.onnx"
    export_network(net, float_path, ModelMetadata("tiny", 32, 48, architecture=net.config))
    int8_path = _with_float_weights(float_path, tmp_path / "int8.onnx", "float.onnx")
    config, state = load_onnx_weights(int8_path)
    assert config == net.config
    assert all(
        torch.equal(state[k], v) for k, v in net.state_dict().items() if "num_batches" not in k
    )


@pytest.mark.parametrize("name", ["../float.onnx", "int8.onnx", "absent.onnx", "loop.onnx"])
def test_float_weights_outside_the_folder_missing_or_looping_are_refused(tmp_path, name) -> None:
    net = _trained_looking_net()
    float_path = tmp_path / "float.onnx"
    export_network(net, float_path, ModelMetadata("tiny", 32, 48, architecture=net.config))
    _with_float_weights(float_path, tmp_path / "loop.onnx", "int8.onnx")  # names another again
    int8_path = _with_float_weights(float_path, tmp_path / "int8.onnx", name)
    with pytest.raises(CheckpointError, match="float.weights"):
        load_onnx_weights(int8_path)


def _probability(path: Path, image: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probability"], {"image": image})[0]


def test_a_flip_averaged_model_is_the_mean_over_the_frame_and_its_mirror(tmp_path) -> None:
    net = _trained_looking_net().eval()
    plain, flipped = tmp_path / "plain.onnx", tmp_path / "flip.onnx"
    export_network(net, plain, ModelMetadata("tiny", 32, 48, architecture=net.config))
    metadata = ModelMetadata("tiny", 32, 48, architecture=net.config, flip_average=True)
    export_network(net, flipped, metadata)
    images = np.random.default_rng(1).random((2, 1, 32, 48), dtype=np.float32)
    mirrored = np.ascontiguousarray(images[..., ::-1])
    expected = (_probability(plain, images) + _probability(plain, mirrored)[..., ::-1]) / 2
    averaged = _probability(flipped, images)
    assert averaged.shape == images.shape
    assert np.abs(averaged - expected).max() < 1e-5
    # Mirroring the frame mirrors the answer, which a single pass does not do.
    assert np.abs(_probability(flipped, mirrored)[..., ::-1] - averaged).max() < 1e-6
    assert (
        np.abs(_probability(plain, mirrored)[..., ::-1] - _probability(plain, images)).max() > 1e-3
    )
    properties = {p.key: p.value for p in onnx.load(str(flipped)).metadata_props}
    assert properties[export_onnx.TEST_TIME_KEY] == "flip-average"
    # The same weights: training can start from it like from any HC Studio model.
    _, state = load_onnx_weights(flipped)
    for key, value in net.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(state[key], value), key


def test_export_command_adds_flip_averaging_and_keeps_it_when_renaming(tmp_path) -> None:
    net = _trained_looking_net()
    source = tmp_path / "run.onnx"
    export_network(net, source, ModelMetadata("run", 32, 48, architecture=net.config))
    flipped, renamed = tmp_path / "flip.onnx", tmp_path / "renamed.onnx"
    assert main(["export", str(source), "--out", str(flipped), "--flip-average"]) == 0
    assert main(["export", str(flipped), "--out", str(renamed), "--name", "shipped"]) == 0
    for path, expected in ((source, "none"), (flipped, "flip-average"), (renamed, "flip-average")):
        properties = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert properties[export_onnx.TEST_TIME_KEY] == expected, path.name
    image = np.random.default_rng(2).random((1, 1, 32, 48), dtype=np.float32)
    assert np.array_equal(_probability(flipped, image), _probability(renamed, image))
