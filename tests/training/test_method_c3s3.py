"""C3S3: competition between two networks, sharpening, outcome-driven contrast at the boundary."""

from __future__ import annotations

import torch
from hc_studio.core.training.method_api import Batch
from hc_studio.core.training.methods.c3s3 import (
    C3S3,
    C3S3Config,
    boundary_band,
    outcome_contrast,
    sharpen,
)

H, W = 32, 48


def batch() -> Batch:
    generator = torch.Generator().manual_seed(1)
    masks = torch.zeros(2, 1, H, W)
    masks[:, :, 8:24, 12:36] = 1.0
    images = 0.2 + 0.5 * masks + 0.05 * torch.rand(masks.shape, generator=generator)
    return Batch(images, masks, torch.rand(2, 1, H, W, generator=generator))


def make(method_context, **options) -> C3S3:
    method = C3S3(C3S3Config(**options))
    method.setup(method_context(False))
    return method


def test_partner_differs_in_architecture_and_trains_from_the_warmup(method_context) -> None:
    method = make(method_context)
    dilated = method.partner.config["dilated_bottleneck"]
    assert dilated != method.ctx.student.config["dilated_bottleneck"]
    assert set(method.extra_modules()) == {"partner", "projectors"}
    method.warmup_step(batch(), 0).loss.backward()
    assert method.partner.head.weight.grad.abs().sum() > 0
    same = make(method_context, heterogeneous=False)
    assert same.partner.config == same.ctx.student.config


def test_the_network_with_the_lower_labelled_loss_wins(method_context) -> None:
    method = make(method_context)
    with torch.no_grad():
        method.ctx.student.head.bias.fill_(-20.0)  # the student predicts no head at all
    assert method.training_step(batch(), 99).scalars["winner"] == 1.0
    with torch.no_grad():
        method.ctx.student.head.bias.zero_()
        method.partner.head.bias.fill_(-20.0)
    assert method.training_step(batch(), 99).scalars["winner"] == 0.0


def test_only_the_loser_learns_from_the_winner(method_context) -> None:
    method = make(method_context)
    unl_a = torch.randn(2, 1, H, W, requires_grad=True)
    unl_b = torch.randn(2, 1, H, W, requires_grad=True)
    method._competition_term(unl_a, unl_b, winner=0).backward()
    assert unl_a.grad is None and unl_b.grad.abs().sum() > 0
    mutual = make(method_context, use_competition=False)
    unl_a.grad = unl_b.grad = None
    mutual._competition_term(unl_a, unl_b, winner=0).backward()
    assert unl_a.grad.abs().sum() > 0 and unl_b.grad.abs().sum() > 0


def test_sharpening_makes_predictions_more_confident() -> None:
    logits = torch.linspace(-4, 4, 81, requires_grad=True)
    prob, sharp = torch.sigmoid(logits), sharpen(logits, 0.1)
    assert not sharp.requires_grad
    assert torch.all((sharp - 0.5).abs() >= (prob.detach() - 0.5).abs())
    assert torch.equal(sharp > 0.5, prob > 0.5)
    assert sharp[50] > 0.99  # logit 1 -> p 0.73 -> sharpened above 0.99


def test_band_holds_disagreements_and_pixels_next_to_the_boundary_only() -> None:
    first = torch.zeros(1, 1, H, W)
    first[..., 8:24, 12:36] = 1.0
    second = first.clone()
    second[..., 8:24, 30:36] = 0.0  # the networks disagree on a strip
    band = boundary_band(first, second, width=5)
    assert band[..., 8:24, 30:36].all()  # every disagreement pixel
    assert band[..., 8, 20] and band[..., 6, 20]  # agreed pixels at the boundary, both sides
    assert not band[..., 16, 20] and not band[..., 0, 0]  # deep inside and far outside


def test_contrast_pulls_agreed_pixels_together_and_pushes_disagreed_apart() -> None:
    torch.manual_seed(0)
    proj = torch.randn(40, 16)
    agree = torch.arange(40) < 30
    aligned = outcome_contrast(proj, proj * torch.where(agree, 1.0, -1.0)[:, None], agree, 0.1)
    reversed_ = outcome_contrast(proj, proj * torch.where(agree, -1.0, 1.0)[:, None], agree, 0.1)
    assert aligned < reversed_
    assert outcome_contrast(proj, proj, torch.ones(40, dtype=torch.bool), 0.1) == 0.0


def test_switches_remove_their_terms(method_context) -> None:
    full = make(method_context).training_step(batch(), 99).scalars
    assert full["contrast"] > 0 and full["agree"] > 0 and full["compete"] > 0
    bare = make(method_context, use_contrastive=False, use_agreement=False)
    scalars = bare.training_step(batch(), 99).scalars
    assert scalars["contrast"] == 0.0 and scalars["agree"] == 0.0
    assert scalars["unsup"] == scalars["compete"]


def test_step_trains_both_networks_and_the_projectors(method_context) -> None:
    method = make(method_context)
    method.training_step(batch(), 99).loss.backward()
    for network in (method.ctx.student, method.partner):
        assert network.inc[0].weight.grad.abs().sum() > 0
    for projector in method.projectors.values():
        assert projector[0].weight.grad.abs().sum() > 0


def test_tiny_training_run_ends_with_done(run_tiny_training) -> None:
    events = run_tiny_training("c3s3")
    assert events[-1]["event"] == "done" and events[-1]["iteration"] == 4
