"""Learning-rate schedule, consistency ramp-up and the EMA teacher."""

from __future__ import annotations

import copy

import pytest
import torch
from hc_studio.core.training.method_api import TrainContext, parse_config_overrides
from hc_studio.core.training.methods.mean_teacher import MeanTeacherConfig
from hc_studio.core.training.schedules import ema_alpha, ema_update, poly_lr, rampup_iterations


def test_poly_lr_starts_at_the_base_and_decays_to_zero() -> None:
    assert poly_lr(0.01, 0, 100) == pytest.approx(0.01)
    assert poly_lr(0.01, 50, 100) == pytest.approx(0.01 * 0.5**0.9)
    assert poly_lr(0.01, 100, 100) == 0.0


def test_rampup_is_zero_in_warmup_and_one_after_a_ramp_scaled_to_the_run() -> None:
    ramp = rampup_iterations(total_iterations=1000, warmup_iterations=100, fraction=0.33)
    assert ramp == 297
    ctx = TrainContext(
        torch.nn.Identity(), None, torch.device("cpu"), 1000, 100, ramp, (32, 48), consistency=0.1
    )
    assert ctx.rampup(50) == 0.0 and ctx.consistency_weight(99) == 0.0
    values = [ctx.rampup(step) for step in range(100, 400)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert 0 < values[0] < 0.01 and ctx.rampup(100 + ramp) == 1.0
    assert ctx.consistency_weight(999) == pytest.approx(0.1)
    assert ctx.consistency_weight(999, maximum=2.0) == pytest.approx(2.0)


def test_ema_alpha_follows_the_student_first_then_the_decay() -> None:
    assert ema_alpha(0, 0.99) == 0.0
    assert ema_alpha(9, 0.99) == pytest.approx(0.9)
    assert ema_alpha(10_000, 0.99) == 0.99


def test_ema_update_averages_parameters_and_copies_buffers() -> None:
    student = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        for p in teacher.parameters():
            p.zero_()
        for p in student.parameters():
            p.fill_(1.0)
        student[1].running_mean.fill_(3.0)
    ema_update(teacher, student, step=1, decay=0.99)  # alpha = 0.5
    assert all(torch.allclose(p, torch.full_like(p, 0.5)) for p in teacher.parameters())
    assert torch.equal(teacher[1].running_mean, student[1].running_mean)


def test_config_overrides_are_typed_and_unknown_keys_fail() -> None:
    config = parse_config_overrides(MeanTeacherConfig, {"noise_std": "0.05"})
    assert config.noise_std == 0.05 and config.noise_clip == MeanTeacherConfig().noise_clip
    with pytest.raises(ValueError, match="known options: noise_clip, noise_std"):
        parse_config_overrides(MeanTeacherConfig, {"noise": "1"})
    with pytest.raises(ValueError, match="expected float"):
        parse_config_overrides(MeanTeacherConfig, {"noise_std": "a lot"})
