"""The teacher-student base: the mean-teacher step that several methods build on.

As in SSL4MIS's `train_mean_teacher_2D.py` (Tarvainen & Valpola 2017): the student sees the
labelled frames and the unlabelled frames with small Gaussian input noise in one forward (so
BatchNorm sees the whole batch); the EMA teacher sees the unlabelled frames with independent
noise; the consistency term is the mean squared difference of their probabilities. The loss is
L_sup + w(t) (consistency + the method's extra terms), w(t) the ramped-up consistency weight.

A method adds its own terms by overriding `extra_terms` (and `extra_scalars` for what it
reports); with `wants_features` both networks also return their feature dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..losses import probability_mse, supervised_loss
from ..method_api import Batch, Method, StepOutput
from ..ssl_ops import input_noise


@dataclass(frozen=True)
class TeacherStudentConfig:
    noise_std: float = 0.1  # std of the Gaussian input noise (SSL4MIS: clamp(0.1 N(0,1), +-0.2))
    noise_clip: float = 0.2


@dataclass
class TeacherStudentViews:
    """One step's forwards. logits: the student's over labelled then noisy unlabelled frames;
    teacher_logits: the teacher's over its own noisy view of the unlabelled frames (no
    gradient); the feature dicts only when the method `wants_features`."""

    n_labelled: int
    logits: Tensor
    teacher_logits: Tensor
    features: dict[str, Tensor] | None = None
    teacher_features: dict[str, Tensor] | None = None

    @property
    def unlabelled_logits(self) -> Tensor:
        return self.logits[self.n_labelled :]


class TeacherStudentMethod(Method):
    """A mean teacher; subclasses add terms through `extra_terms` / `extra_scalars`.

    Its Config must have `noise_std` and `noise_clip` (derive it from TeacherStudentConfig).
    """

    Config: ClassVar[type] = TeacherStudentConfig
    needs_teacher = True
    wants_features: ClassVar[bool] = False

    def noisy(self, images: Tensor) -> Tensor:
        """`images` with the mean-teacher input noise (fresh draws on every call)."""
        return input_noise(images, self.config.noise_std, self.config.noise_clip)

    def views(self, batch: Batch) -> TeacherStudentViews:
        """The student's and the teacher's forwards (the student's noise is drawn first)."""
        n_labelled = batch.labelled_images.shape[0]
        inputs = torch.cat([batch.labelled_images, self.noisy(batch.unlabelled_images)])
        logits, features = self._forward(self.ctx.student, inputs)
        with torch.no_grad():
            teacher_view = self.noisy(batch.unlabelled_images)
            teacher_logits, teacher_features = self._forward(self.ctx.teacher, teacher_view)
        return TeacherStudentViews(n_labelled, logits, teacher_logits, features, teacher_features)

    def _forward(self, network, images: Tensor) -> tuple[Tensor, dict[str, Tensor] | None]:
        if self.wants_features:
            return network(images, return_features=True)
        return network(images), None

    def extra_terms(self, views: TeacherStudentViews, step: int) -> dict[str, Tensor]:
        """Unsupervised terms beside the consistency term (summed with it, then weighted)."""
        return {}

    def extra_scalars(self, terms: dict[str, Tensor], step: int) -> dict[str, float]:
        """Scalars to report beside "sup", "unsup" and "weight"; `terms` holds every term."""
        return {}

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        views = self.views(batch)
        sup = supervised_loss(views.logits[: views.n_labelled], batch.labelled_masks)
        terms: dict[str, Any] = {
            "consistency": probability_mse(views.unlabelled_logits, views.teacher_logits),
            **self.extra_terms(views, step),
        }
        unsup = sum(terms.values())
        weight = self.ctx.consistency_weight(step)
        scalars = {"sup": float(sup.detach()), "unsup": float(unsup.detach()), "weight": weight}
        scalars.update(self.extra_scalars(terms, step))
        return StepOutput(sup + weight * unsup, scalars)
