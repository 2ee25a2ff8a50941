"""Mean Teacher (Tarvainen & Valpola 2017), as in SSL4MIS's `train_mean_teacher_2D.py`.

The student sees labelled + unlabelled frames with small Gaussian input noise; the EMA teacher
sees the unlabelled frames with independent noise; the consistency loss is the mean squared
difference of their probabilities, weighted by the ramped-up consistency weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import probability_mse, supervised_loss
from ..method_api import Batch, Method, StepOutput


@dataclass(frozen=True)
class MeanTeacherConfig:
    noise_std: float = 0.1  # std of the Gaussian input noise (SSL4MIS: clamp(0.1 N(0,1), +-0.2))
    noise_clip: float = 0.2


class MeanTeacher(Method):
    name = "mean-teacher"
    description = (
        "Mean Teacher: EMA teacher, consistency between noisy student and teacher predictions."
    )
    Config = MeanTeacherConfig
    needs_teacher = True

    def _noisy(self, images: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(images) * self.config.noise_std
        return images + noise.clamp(-self.config.noise_clip, self.config.noise_clip)

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        ctx = self.ctx
        n_labelled = batch.labelled_images.shape[0]
        unlabelled = batch.unlabelled_images
        # One student forward over both streams: BatchNorm sees the whole batch, as in SSL4MIS.
        inputs = torch.cat([batch.labelled_images, self._noisy(unlabelled)])
        logits = ctx.student(inputs)
        sup = supervised_loss(logits[:n_labelled], batch.labelled_masks)
        with torch.no_grad():
            teacher_logits = ctx.teacher(self._noisy(unlabelled))
        unsup = probability_mse(logits[n_labelled:], teacher_logits)
        weight = ctx.consistency_weight(step)
        loss = sup + weight * unsup
        return StepOutput(
            loss, {"sup": float(sup.detach()), "unsup": float(unsup.detach()), "weight": weight}
        )
