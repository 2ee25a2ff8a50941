"""Schedules: polynomial learning-rate decay and the EMA teacher update.

The trainer owns the run's learning-rate schedule (`PolySchedule`) and hands the same object to
the method (`TrainContext.lr_schedule`), so a method that follows the learning rate never keeps
a copy of it. The consistency ramp-up lives in `method_api.sigmoid_rampup` (methods reach it
through `TrainContext.rampup`); its length is scaled to the run by the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def poly_lr(base_lr: float, step: int, total_iterations: int, power: float = 0.9) -> float:
    """base_lr * (1 - step / total) ** power, the schedule of the SSL4MIS scripts (step 0-based)."""
    progress = min(max(step / max(total_iterations, 1), 0.0), 1.0)
    return base_lr * (1.0 - progress) ** power


@dataclass(frozen=True)
class PolySchedule:
    """The run's learning rate: `poly_lr(base_lr, step, total_iterations, power)`."""

    base_lr: float
    total_iterations: int
    power: float = 0.9

    def __call__(self, step: int) -> float:
        """The learning rate at `step` (0-based)."""
        return poly_lr(self.base_lr, step, self.total_iterations, self.power)

    def ratio(self, step: int) -> float:
        """The learning rate at `step` relative to its start (1 at step 0, falling to 0)."""
        return poly_lr(1.0, step, self.total_iterations, self.power)


def ema_alpha(step: int, decay: float) -> float:
    """min(1 - 1/(step + 1), decay): the teacher follows the student closely at first."""
    return min(1.0 - 1.0 / (step + 1), decay)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, step: int, decay: float = 0.99) -> None:
    """teacher <- alpha teacher + (1 - alpha) student for parameters; buffers are copied.

    Copying buffers (BatchNorm running statistics) keeps the teacher's evaluation-mode
    statistics those of the network whose weights it averages.
    """
    alpha = ema_alpha(step, decay)
    for t_param, s_param in zip(teacher.parameters(), student.parameters(), strict=True):
        t_param.mul_(alpha).add_(s_param.detach(), alpha=1.0 - alpha)
    for t_buffer, s_buffer in zip(teacher.buffers(), student.buffers(), strict=True):
        t_buffer.copy_(s_buffer)


def rampup_iterations(total_iterations: int, warmup_iterations: int, fraction: float) -> int:
    """Length of the consistency ramp-up: `fraction` of the steps after the warm-up."""
    return max(1, round(fraction * max(total_iterations - warmup_iterations, 0)))
