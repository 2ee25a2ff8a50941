"""The ERSR method over the training protocol: switches, filtering, full steps."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.training.deep_supervision import deep_supervision_loss
from hc_studio.core.training.method_api import Batch, TrainContext, parse_config_overrides
from hc_studio.core.training.methods.ersr import ERSR, ERSRConfig, losses
from hc_studio.models.unet import UNet
from torch import nn

HEIGHT, WIDTH = 48, 64
TOTAL, WARMUP, RAMPUP = 100, 10, 40
HEADS = [Ellipse.normalised(32 + i, 24, 18 - i, 13, 0.4 * i) for i in range(4)]


def head_maps(heads: list[Ellipse]) -> torch.Tensor:
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    maps = [(e.normalised_radius_sq(cols, rows) <= 1).astype(np.float32) for e in heads]
    return torch.from_numpy(np.stack(maps)[:, None])


class FixedTeacher(nn.Module):
    """A teacher that predicts given probability maps whatever it is shown."""

    def __init__(self, prob: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", torch.logit(prob.clamp(1e-4, 1 - 1e-4)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits[: images.shape[0]]


class CountingStudent(nn.Module):
    """Wraps the student and records how many images each forward sees."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.batch_sizes: list[int] = []

    @property
    def level_channels(self) -> list[int]:
        return self.network.level_channels

    def forward(self, images: torch.Tensor, **options):
        self.batch_sizes.append(images.shape[0])
        return self.network(images, **options)


def make_method(teacher_prob: torch.Tensor | None = None, **options) -> ERSR:
    torch.manual_seed(0)
    student = UNet(width=4)
    if teacher_prob is None:
        teacher = copy.deepcopy(student).requires_grad_(False)
    else:
        teacher = FixedTeacher(teacher_prob)
    method = ERSR(dataclasses.replace(ERSRConfig(), **options))
    method.setup(
        TrainContext(
            student=CountingStudent(student),
            teacher=teacher,
            device=torch.device("cpu"),
            total_iterations=TOTAL,
            warmup_iterations=WARMUP,
            rampup_iterations=RAMPUP,
            image_size=(HEIGHT, WIDTH),
            consistency=0.1,
        )
    )
    return method


def make_batch(n_unlabelled: int = 4) -> Batch:
    generator = torch.Generator().manual_seed(1)
    masks = head_maps(HEADS[:2])
    images = 0.2 + 0.5 * masks + 0.05 * torch.rand(masks.shape, generator=generator)
    heads = head_maps([HEADS[i % 4] for i in range(n_unlabelled)])
    unlabelled = 0.2 + 0.5 * heads + 0.05 * torch.rand(heads.shape, generator=generator)
    return Batch(images, masks, unlabelled)


def ragged(prob: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (prob * (torch.rand(prob.shape, generator=generator) > 0.25)).clamp(0, 1)


def test_attributes() -> None:
    assert ERSR.name == "ersr" and ERSR.needs_teacher
    assert "\n" not in ERSR.description
    config = ERSRConfig()
    assert config.use_filter and config.use_ellipse_refine and config.use_symmetry
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.level = 0.5  # type: ignore[misc]


def test_filter_keeps_half_of_the_regular_maps_at_the_start_of_the_ramp() -> None:
    regular = head_maps(HEADS) * 0.95
    teacher_prob = torch.cat([ragged(regular[:2], 3), regular[2:]])  # first two are ragged
    method = make_method(teacher_prob)
    kept = method.kept_indices(teacher_prob, step=WARMUP)
    assert sorted(kept.tolist()) == [2, 3]
    assert len(method.kept_indices(teacher_prob, step=WARMUP + RAMPUP)) == 4


def test_without_the_filter_every_map_is_kept() -> None:
    teacher_prob = torch.cat([ragged(head_maps(HEADS[:2]), 3), head_maps(HEADS[2:])])
    method = make_method(teacher_prob, use_filter=False)
    output = method.training_step(make_batch(), step=WARMUP)
    assert output.scalars["kept"] == 1.0


def test_ellipse_switch_changes_the_pseudo_label() -> None:
    teacher_prob = head_maps(HEADS) * 0.9
    teacher_prob[:, :, 20:28, 28:36] = 0.1  # a hole in every head
    images = make_batch().unlabelled_images
    refined = make_method(teacher_prob).pseudo_labels(images, WARMUP + RAMPUP)
    plain = make_method(teacher_prob, use_ellipse_refine=False).pseudo_labels(images, TOTAL)
    assert refined.refinement.pseudo_label[:, :, 20:28, 28:36].all()
    assert torch.equal(plain.refinement.pseudo_label, (teacher_prob[plain.kept] > 0.6).float())


def test_symmetry_switch_removes_the_mirror_terms_and_the_composites() -> None:
    teacher_prob = head_maps(HEADS) * 0.9
    with_symmetry = make_method(teacher_prob, use_filter=False)
    output = with_symmetry.training_step(make_batch(), step=TOTAL - 1)
    assert output.scalars["aug"] > 0 and output.scalars["mirror"] > 0
    assert with_symmetry.ctx.student.batch_sizes == [2 + 4 + 8]  # labelled, kept, composites

    without = make_method(teacher_prob, use_filter=False, use_symmetry=False)
    output = without.training_step(make_batch(), step=TOTAL - 1)
    assert output.scalars["aug"] == 0.0 and output.scalars["mirror"] == 0.0
    assert output.scalars["unsup"] == pytest.approx(output.scalars["seg"])
    assert without.ctx.student.batch_sizes == [2 + 4]


def test_frames_without_an_ellipse_are_left_out_of_the_symmetry_terms() -> None:
    teacher_prob = head_maps(HEADS) * 0.9
    teacher_prob[1:] = 0.1  # only the first frame has a head
    method = make_method(teacher_prob, use_filter=False)
    output = method.training_step(make_batch(), step=TOTAL - 1)
    assert output.scalars["fitted"] == 0.25
    assert method.ctx.student.batch_sizes == [2 + 4 + 2]


def test_full_step_gives_a_finite_loss_and_gradients_to_the_student_only() -> None:
    method = make_method(head_maps(HEADS) * 0.9)
    output = method.training_step(make_batch(), step=WARMUP + RAMPUP // 2)
    assert math.isfinite(float(output.loss.detach()))
    assert all(math.isfinite(v) for v in output.scalars.values())
    assert 0 < output.scalars["weight"] < 0.1
    assert output.scalars["seg"] > 0
    output.loss.backward()
    student = method.ctx.student.network
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in student.parameters())
    assert student.head.weight.grad.abs().sum() > 0


def test_with_a_real_teacher_network_a_few_steps_run() -> None:
    method = make_method()  # the teacher is a copy of the untrained student
    optimiser = torch.optim.Adam(method.ctx.student.parameters(), lr=1e-2)
    batch = make_batch()
    for step in range(WARMUP, WARMUP + 3):
        output = method.training_step(batch, step)
        optimiser.zero_grad()
        output.loss.backward()
        optimiser.step()
        assert math.isfinite(float(output.loss.detach()))


def test_warmup_uses_the_ersr_supervised_loss() -> None:
    method = make_method()
    batch = make_batch()
    output = method.warmup_step(batch, 0)
    with torch.no_grad():
        expected = losses.ersr_supervised_loss(
            method.ctx.student(batch.labelled_images), batch.labelled_masks
        )
    assert float(output.loss.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_the_distance_loss_option_adds_the_boundary_term_in_both_stages() -> None:
    batch = make_batch()
    plain, weighted = make_method(), make_method(distance_loss_weight=0.5)
    with torch.no_grad():
        logits = weighted.ctx.student(batch.labelled_images)
        boundary = losses.distance_loss(logits, batch.labelled_masks)
    assert float(boundary) > 0
    warm_plain = float(plain.warmup_step(batch, 0).loss.detach())
    warm_weighted = float(weighted.warmup_step(batch, 0).loss.detach())
    assert warm_weighted == pytest.approx(warm_plain + 0.5 * float(boundary), rel=1e-5)
    torch.manual_seed(2)
    sup_plain = plain.training_step(batch, WARMUP).scalars["sup"]
    torch.manual_seed(2)
    sup_weighted = weighted.training_step(batch, WARMUP).scalars["sup"]
    assert sup_weighted > sup_plain


@pytest.mark.parametrize("name", ["distance_loss_weight", "deep_supervision_weight"])
@pytest.mark.parametrize("weight", ["-1", "nan", "inf"])
def test_a_negative_or_non_finite_loss_weight_is_refused(name: str, weight: str) -> None:
    with pytest.raises(ValueError, match=name):
        parse_config_overrides(ERSRConfig, {name: weight})


def test_deep_supervision_adds_the_levels_loss_and_trains_its_heads_in_both_stages() -> None:
    batch = make_batch()
    plain, deep = make_method(), make_method(deep_supervision_weight=0.5)
    assert plain.extra_modules() == {} and list(deep.extra_modules()) == ["aux_heads"]
    with torch.no_grad():
        logits, features = deep.ctx.student(batch.labelled_images, return_features=True)
        level_logits = deep.aux_heads(features["levels"], (HEIGHT, WIDTH))
        levels_loss = deep_supervision_loss(
            level_logits, batch.labelled_masks, losses.ersr_supervised_loss
        )
        main_loss = losses.ersr_supervised_loss(logits, batch.labelled_masks)
    assert float(deep.warmup_step(batch, 0).loss.detach()) == pytest.approx(
        float(main_loss) + 0.5 * float(levels_loss), rel=1e-5
    )
    output = deep.training_step(batch, WARMUP)
    output.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in deep.aux_heads.parameters())
