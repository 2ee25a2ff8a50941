"""The bases methods share: the teacher-student step with its hook, the partner builder, and
the learning-rate schedule handed from the trainer."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hc_studio.core.training.method_api import Batch
from hc_studio.core.training.methods.mean_teacher import MeanTeacher
from hc_studio.core.training.methods.mn import MN, MNConfig
from hc_studio.core.training.methods.teacher_student import TeacherStudentMethod
from hc_studio.core.training.methods.two_network import (
    PartnerSpec,
    TwoNetworkMethod,
    build_partner,
)
from hc_studio.core.training.schedules import PolySchedule, poly_lr
from hc_studio.models.efficientnet_lite import EfficientLiteUNet
from hc_studio.models.unet import UNet

HEIGHT, WIDTH = 32, 48


def _batch() -> Batch:
    generator = torch.Generator().manual_seed(3)
    masks = (torch.rand(2, 1, HEIGHT, WIDTH, generator=generator) > 0.5).float()
    unlabelled = torch.rand(2, 1, HEIGHT, WIDTH, generator=generator)
    return Batch(masks * 0.5 + 0.2, masks, unlabelled)


class _WithExtraTerm(TeacherStudentMethod):
    """A teacher-student method whose extra term is a known constant."""

    def extra_terms(self, views, step):
        assert views.unlabelled_logits.shape[0] == 2 and views.features is None
        return {"extra": views.logits.new_tensor(2.0)}

    def extra_scalars(self, terms, step):
        return {"extra": float(terms["extra"])}


def test_the_extra_terms_hook_joins_the_consistency_term(method_context) -> None:
    plain, extended = MeanTeacher(), _WithExtraTerm()
    for method in (plain, extended):
        method.setup(method_context(needs_teacher=True))
    torch.manual_seed(7)
    base = plain.training_step(_batch(), 99)
    torch.manual_seed(7)
    out = extended.training_step(_batch(), 99)
    assert out.scalars["extra"] == 2.0
    assert out.scalars["unsup"] == pytest.approx(base.scalars["unsup"] + 2.0)
    weight = base.scalars["weight"]
    expected = float(base.loss.detach()) + weight * 2.0
    assert float(out.loss.detach()) == pytest.approx(expected, rel=1e-5)


def test_one_builder_makes_every_kind_of_partner() -> None:
    student = UNet(width=4)
    same = build_partner(PartnerSpec(), student)
    assert isinstance(same, UNet) and same.config == student.config
    assert not torch.equal(same.inc[0].weight, student.inc[0].weight)  # its own initialisation
    flipped = build_partner(PartnerSpec(flip_dilation=True), student)
    assert flipped.config["dilated_bottleneck"] != student.config["dilated_bottleneck"]
    lite = build_partner(PartnerSpec("efficientnet-lite", out_channels=2, width=4), student)
    assert isinstance(lite, EfficientLiteUNet)
    assert lite(torch.rand(1, 1, HEIGHT, WIDTH)).shape == (1, 2, HEIGHT, WIDTH)
    with pytest.raises(ValueError, match="unknown partner kind 'vgg'"):
        build_partner(PartnerSpec("vgg"), student)
    with pytest.raises(TypeError, match="architecture `config`"):
        build_partner(PartnerSpec(), torch.nn.Linear(1, 1))


def test_a_partner_like_an_efficientnet_student_is_one_and_the_bottleneck_flip_is_refused() -> None:
    student = EfficientLiteUNet(decoder_width=4)
    partner = build_partner(PartnerSpec(), student)
    assert isinstance(partner, EfficientLiteUNet) and partner.config == student.config
    with pytest.raises(ValueError, match="needs --architecture unet"):
        build_partner(PartnerSpec(flip_dilation=True), student)


class _Solo(TwoNetworkMethod):
    def partner_spec(self, ctx):
        return None

    def training_step(self, batch, step):
        return self.warmup_step(batch, step)


def test_a_two_network_method_without_partner_trains_the_student_alone(method_context) -> None:
    method = _Solo()
    method.setup(method_context(needs_teacher=False))
    assert method.partner is None and method.extra_modules() == {}
    output = method.warmup_step(_batch(), 0)
    assert set(output.scalars) == {"sup"}


def test_mn_follows_the_trainers_learning_rate_schedule(method_context) -> None:
    ctx = method_context(needs_teacher=False, total=100)
    ctx = dataclasses.replace(ctx, lr_schedule=PolySchedule(0.05, 100, power=2.0))
    method = MN(MNConfig(partner="random", partner_width=4))
    method.setup(ctx)
    assert method.lr_ratio(50) == pytest.approx(0.25)  # (1 - 50/100) ** 2, not ** 0.9
    assert ctx.lr_schedule(50) == pytest.approx(poly_lr(0.05, 50, 100, 2.0))
