"""TransMedSeg: Transferable Semantic Augmentation (Wang et al., arXiv 2505.14753), for one
foreground.

A mean teacher (the teacher-student base, `teacher_student`) plus the TSA term, its extra term:
the student's classifier (the U-Net's 3x3 head) is trained on the teacher's features of the
unlabelled frames, augmented towards the student's semantics. For a teacher feature a of class
y (the teacher's pseudo-label), the augmented feature follows

    a~ ~ N(a + lambda (mu_s,y - mu_t,y), lambda Sigma_s,y)

with mu_s, Sigma_s the student's class means and covariances and mu_t the teacher's class means,
kept in a light memory (exponential moving averages). The augmentation is never sampled: with
one foreground the logit is z = w.a + b, and the expected BCE over a~ is bounded above by the
BCE of the shifted logit (ISDA, Wang et al. 2019)

    z~ = z + lambda w.(mu_s,y - mu_t,y) - (2y - 1) lambda/2 w' Sigma_s,y w,

which costs one 3x3 head over the teacher features and two quadratic forms. The features are
the head's receptive field: the 3x3 neighbourhood of the last decoder features (9 x width).
lambda grows linearly from 0 after the warm-up to `lambda0` (ISDA's schedule).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import ssl_ops
from ..method_api import TrainContext
from .teacher_student import TeacherStudentConfig, TeacherStudentMethod, TeacherStudentViews


@dataclass(frozen=True)
class TransMedSegConfig(TeacherStudentConfig):
    use_tsa: bool = True  # the transferable semantic augmentation term; off: a mean teacher
    use_mean_shift: bool = True  # shift towards the student's class means; off: plain ISDA
    lambda0: float = 0.5  # augmentation strength reached at the end of the run
    tsa_weight: float = 1.0  # weight of the TSA term beside the consistency term
    memory_momentum: float = 0.9  # EMA factor of the class statistics
    memory_samples: int = 1024  # pixels per class per step that update the statistics


def patch_features(features: Tensor, where: Tensor) -> Tensor:
    """(N, 9C) zero-padded 3x3 neighbourhoods of (B, C, H, W) features at (N, 3) [b, row, col].

    Ordered channel-major, then kernel row and column, like `conv.weight.flatten()` of a
    (1, C, 3, 3) convolution, so that the head's logit there is weight . patch + bias.
    """
    padded = F.pad(features, (1, 1, 1, 1))
    frame, row, col = where.unbind(1)
    taps = [padded[frame, :, row + dy, col + dx] for dy in range(3) for dx in range(3)]
    return torch.stack(taps, dim=2).flatten(1)  # (N, C, 9) -> (N, 9C)


def isda_bce_bound(
    logits: Tensor, labels: Tensor, quad: Tensor, shift: Tensor, strength: float
) -> Tensor:
    """Upper bound of the expected BCE under the feature augmentation N(lambda shift, lambda S).

    logits, labels: (B, 1, H, W), labels in {0, 1}; quad: (2,) w' Sigma_k w per class k;
    shift: (2,) w.(mu_s,k - mu_t,k) per class; strength: lambda >= 0. Equals the plain BCE when
    quad and shift are zero and is never below it when shift is zero.
    """
    index = labels.long()
    sign = 2.0 * labels - 1.0
    shifted = logits + strength * shift[index] - sign * 0.5 * strength * quad[index]
    return F.binary_cross_entropy_with_logits(shifted, labels)


class ClassStatistics:
    """Exponential moving class statistics of student and teacher patch features (2 classes).

    student_mean (2, D), student_cov (2, D, D), teacher_mean (2, D); a class is filled at its
    first update (then `filled[k]` is True).
    """

    def __init__(self, dim: int, momentum: float, device: torch.device) -> None:
        self.momentum = momentum
        self.student_mean = torch.zeros(2, dim, device=device)
        self.student_cov = torch.zeros(2, dim, dim, device=device)
        self.teacher_mean = torch.zeros(2, dim, device=device)
        self.filled = torch.zeros(2, dtype=torch.bool, device=device)

    @torch.no_grad()
    def update(self, student: Tensor, teacher: Tensor, labels: Tensor) -> None:
        """Fold in (N, D) patch features of both networks at the same pixels, labels (N,)."""
        for k in range(2):
            chosen = labels == k
            if int(chosen.sum()) < 2:
                continue
            s, t = student[chosen], teacher[chosen]
            mean = s.mean(0)
            cov = torch.cov(s.T, correction=0)
            keep = self.momentum if bool(self.filled[k]) else 0.0
            self.student_mean[k] = keep * self.student_mean[k] + (1 - keep) * mean
            self.student_cov[k] = keep * self.student_cov[k] + (1 - keep) * cov
            self.teacher_mean[k] = keep * self.teacher_mean[k] + (1 - keep) * t.mean(0)
            self.filled[k] = True

    def state(self) -> dict[str, Tensor]:
        names = ("student_mean", "student_cov", "teacher_mean", "filled")
        return {name: getattr(self, name).clone() for name in names}

    def load(self, state: Mapping[str, Tensor]) -> None:
        for name, value in state.items():
            setattr(self, name, value.to(getattr(self, name).device))


def sample_per_class(labels: Tensor, count: int) -> Tensor:
    """(N, 3) [b, row, col] of up to `count` random pixels of each class of (B, 1, H, W) labels."""
    picked = []
    for k in (0.0, 1.0):
        where = (labels[:, 0] == k).nonzero()
        if where.shape[0] > count:
            where = where[torch.randperm(where.shape[0], device=labels.device)[:count]]
        picked.append(where)
    return torch.cat(picked)


class TransMedSeg(TeacherStudentMethod):
    name = "transmedseg"
    Config = TransMedSegConfig
    wants_features = True

    def setup(self, ctx: TrainContext) -> None:
        super().setup(ctx)
        head = ctx.student.head
        self.memory = ClassStatistics(head.weight.numel(), self.config.memory_momentum, ctx.device)

    def strength(self, step: int) -> float:
        """lambda at `step`: 0 at the end of the warm-up, `lambda0` at the last step."""
        return self.config.lambda0 * ssl_ops.post_warmup_progress(self.ctx, step)

    def tsa_loss(self, student_dec: Tensor, teacher_dec: Tensor, pseudo: Tensor, step: int):
        """The bound over the teacher features, after folding this step into the memory."""
        where = sample_per_class(pseudo, self.config.memory_samples)
        self.memory.update(
            patch_features(student_dec.detach(), where),
            patch_features(teacher_dec, where),
            pseudo[where[:, 0], 0, where[:, 1], where[:, 2]].long(),
        )
        head = self.ctx.student.head
        w = head.weight.flatten()
        quad = torch.einsum("d,kde,e->k", w, self.memory.student_cov, w)
        shift = (self.memory.student_mean - self.memory.teacher_mean) @ w
        if not self.config.use_mean_shift:
            shift = torch.zeros_like(shift)
        return isda_bce_bound(head(teacher_dec), pseudo, quad, shift, self.strength(step))

    def extra_terms(self, views: TeacherStudentViews, step: int) -> dict[str, Tensor]:
        if not self.config.use_tsa:
            return {}
        tsa = self.tsa_loss(
            views.features["decoder"][views.n_labelled :],
            views.teacher_features["decoder"],
            ssl_ops.hard_labels(views.teacher_logits),
            step,
        )
        return {"tsa": self.config.tsa_weight * tsa}

    def extra_scalars(self, terms: dict[str, Tensor], step: int) -> dict[str, float]:
        tsa = float(terms["tsa"].detach()) if "tsa" in terms else 0.0
        return {"tsa": tsa, "lambda": self.strength(step)}

    def state_dict(self) -> dict[str, Any]:
        return {"memory": self.memory.state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "memory" in state:
            self.memory.load(state["memory"])
