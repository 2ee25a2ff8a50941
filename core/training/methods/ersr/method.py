"""ERSR (Zhou et al., IEEE JBHI 2025, arXiv 2508.19815) over the shared trainer.

After the supervised warm-up, each step:
1. the EMA teacher predicts the unlabelled frames; the most regular fraction of them (dual
   boundary / distance-transform scoring, growing from half the batch to all of it with the
   ramp-up) is kept;
2. each kept map is refined with its fitted ellipse and thresholded into a pseudo-label;
3. the frames are mirrored about the ellipse's major axis (the head's midline) into two
   composites each, perturbed inside the head, half by half;
4. one student forward over labelled frames, kept unlabelled frames and composites gives
   L = L_sup + w(t) (L_seg + L_aug + L_mirror), all three consistency terms mean squared errors
   of probabilities: student vs pseudo-label, composite prediction vs mirrored student
   prediction, and one side of the composite prediction vs the reflection of the other.

The three steps live in this package's modules `filtering`, `refinement` and `symmetry`.
A kept frame without a usable ellipse keeps its thresholded teacher map as pseudo-label and is
left out of the two symmetry terms (it has no axis to mirror about).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...deep_supervision import AuxiliaryHeads, deep_supervision_loss
from ...method_api import Batch, Method, StepOutput, TrainContext
from . import filtering, symmetry
from .losses import ersr_supervised_loss
from .refinement import RefineConfig, Refinement, refine_pseudo_labels


@dataclass(frozen=True)
class ERSRConfig:
    """ERSR's switches and constants (the paper's values as defaults)."""

    use_filter: bool = True  # dual-scoring adaptive filtering of teacher maps
    use_ellipse_refine: bool = True  # ellipse-constrained pseudo-label refinement
    use_symmetry: bool = True  # mirrored composites with the L_aug and L_mirror terms
    boundary_weight: float = 0.5  # boundary score's share of the combined filter score
    keep_start: float = 0.5  # kept fraction of the batch at the start of the ramp-up
    small_batch: int = 4  # batches smaller than this keep at least `small_batch_keep`
    small_batch_keep: float = 0.75
    level: float = 0.6  # component and pseudo-label threshold
    fill_base: float = 0.6
    fill_power: float = 2.0
    decay: float = 0.5
    perturb_prob: float = 0.2
    noise_std: float = 0.05
    gamma_low: float = 1.2
    gamma_high: float = 1.8
    shift: float = 0.1
    blur_sigma_low: float = 0.5
    blur_sigma_high: float = 1.5
    # Weight of the signed-distance boundary loss added to L_sup (losses.distance_loss); 0 keeps
    # the paper's L_sup.
    distance_loss_weight: float = 0.0
    # Weight of deep supervision (core.training.deep_supervision): L_sup of the decoder's coarser
    # levels through training-only heads, added to L_sup; 0 keeps the paper's L_sup.
    deep_supervision_weight: float = 0.0
    # Weigh each labelled frame's L_sup by its millimetres per network pixel (relative to the
    # batch's mean): HC error is read in mm, and one pixel of outline error costs a frame its
    # network pixel's size (0.13-0.98 mm on the half-resolution HC18 frames at 224x320). Needs
    # every labelled frame's pixel size.
    pixel_size_weighting: bool = False

    def __post_init__(self) -> None:
        # A negative weight would reward a wrong outline: refuse it rather than train on it.
        for name in ("distance_loss_weight", "deep_supervision_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"option {name}: expected 0 or a positive number, got {value}")


@dataclass
class PseudoLabels:
    """Teacher-side result for one batch of unlabelled frames.

    kept: (K,) indices into the unlabelled batch; refinement: pseudo-labels of those K frames;
    with_axis: (M,) indices into the K kept frames that have an ellipse; axes: (M, 4) their
    major axes as [cx, cy, cos, sin].
    """

    kept: Tensor
    refinement: Refinement
    with_axis: Tensor
    axes: Tensor


class ERSR(Method):
    name = "ersr"
    Config = ERSRConfig
    needs_teacher = True
    aux_heads: AuxiliaryHeads | None = None  # deep supervision's training-only heads, when on

    @property
    def refine_config(self) -> RefineConfig:
        c = self.config
        return RefineConfig(c.level, c.fill_base, c.fill_power, c.decay)

    @property
    def perturb_config(self) -> symmetry.PerturbConfig:
        c = self.config
        return symmetry.PerturbConfig(
            c.perturb_prob,
            c.noise_std,
            (c.gamma_low, c.gamma_high),
            c.shift,
            (c.blur_sigma_low, c.blur_sigma_high),
        )

    def setup(self, ctx: TrainContext) -> None:
        super().setup(ctx)
        if self.config.deep_supervision_weight:
            self.aux_heads = AuxiliaryHeads(ctx.student.level_channels).to(ctx.device)

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"aux_heads": self.aux_heads} if self.aux_heads is not None else {}

    def student_forward(self, images: Tensor) -> tuple[Tensor, list[Tensor] | None]:
        """The student's logits, and its decoder levels when deep supervision needs them."""
        if self.aux_heads is None:
            return self.ctx.student(images), None
        logits, features = self.ctx.student(images, return_features=True)
        return logits, features["levels"]

    def supervised_loss(
        self,
        logits: Tensor,
        masks: Tensor,
        levels: list[Tensor] | None = None,
        pixel_mm: Tensor | None = None,
    ) -> Tensor:
        """L_sup of both stages on the first len(masks) frames of `logits` (and `levels`), with
        the boundary term when `distance_loss_weight` is set, the decoder levels' L_sup when
        `deep_supervision_weight` is, and each frame weighted by `pixel_mm` (its millimetres per
        network pixel) when `pixel_size_weighting` is."""
        count = masks.shape[0]
        weights = self.frame_weights(pixel_mm)
        loss_fn = partial(ersr_supervised_loss, sample_weights=weights)
        loss = loss_fn(logits[:count], masks, self.config.distance_loss_weight)
        if self.aux_heads is not None and levels is not None:
            level_logits = self.aux_heads([level[:count] for level in levels], masks.shape[-2:])
            deep = deep_supervision_loss(level_logits, masks, loss_fn)
            loss = loss + self.config.deep_supervision_weight * deep
        return loss

    def frame_weights(self, pixel_mm: Tensor | None) -> Tensor | None:
        """(B,) weights of mean 1 proportional to `pixel_mm`, or None when not weighting."""
        if not self.config.pixel_size_weighting:
            return None
        if pixel_mm is None:
            raise ValueError(
                "option pixel_size_weighting needs the pixel size of every labelled frame: "
                "give --pixel-csv covering them (or DICOM frames with a pixel spacing)"
            )
        return pixel_mm / pixel_mm.mean()

    def warmup_step(self, batch: Batch, step: int) -> StepOutput:
        """Stage 1 uses ERSR's supervised loss, so both stages optimise the same L_sup."""
        logits, levels = self.student_forward(batch.labelled_images)
        loss = self.supervised_loss(logits, batch.labelled_masks, levels, batch.labelled_pixel_mm)
        return StepOutput(loss, {"sup": float(loss.detach())})

    def kept_indices(self, teacher_prob: Tensor, step: int) -> Tensor:
        """(K,) indices of the unlabelled frames whose teacher maps are used this step."""
        batch_size = teacher_prob.shape[0]
        if not self.config.use_filter:
            return torch.arange(batch_size, device=teacher_prob.device)
        fraction = filtering.kept_fraction(self.ctx.rampup(step), self.config.keep_start)
        count = filtering.keep_count(
            batch_size, fraction, self.config.small_batch, self.config.small_batch_keep
        )
        return filtering.select_reliable(teacher_prob, count, self.config.boundary_weight)

    @torch.no_grad()
    def teacher_probabilities(self, unlabelled: Tensor) -> Tensor:
        """(B, 1, H, W) teacher probabilities, BatchNorm in evaluation mode (as in the reference
        code: the trainer copies the student's running statistics into the teacher, and a small
        unlabelled batch gives noisy batch statistics)."""
        teacher = self.ctx.teacher
        was_training = teacher.training
        teacher.eval()
        try:
            return torch.sigmoid(teacher(unlabelled))
        finally:
            teacher.train(was_training)

    def pseudo_labels(self, unlabelled: Tensor, step: int) -> PseudoLabels:
        """Teacher prediction, filtering and refinement for (B, 1, H, W) unlabelled frames."""
        teacher_prob = self.teacher_probabilities(unlabelled)
        kept = self.kept_indices(teacher_prob, step)
        refinement = refine_pseudo_labels(
            teacher_prob[kept], self.refine_config, self.config.use_ellipse_refine
        )
        fitted = [i for i, e in enumerate(refinement.ellipses) if e is not None]
        with_axis = torch.tensor(fitted, dtype=torch.long, device=unlabelled.device)
        axes = symmetry.axis_parameters([refinement.ellipses[i] for i in fitted], unlabelled.device)
        return PseudoLabels(kept, refinement, with_axis, axes)

    def mirrored_inputs(self, frames: Tensor, labels: PseudoLabels) -> Tensor:
        """(2M, 1, H, W) perturbed mirrored composites of the kept frames that have an axis."""
        pseudo_label = labels.refinement.pseudo_label[labels.with_axis]
        head = symmetry.mirrored_composites(pseudo_label, labels.axes)
        composites = symmetry.mirrored_composites(frames[labels.with_axis], labels.axes)
        axes2 = torch.cat([labels.axes, labels.axes])
        return symmetry.perturb_halves(composites, head, axes2, self.perturb_config)

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        n_labelled = batch.labelled_images.shape[0]
        labels = self.pseudo_labels(batch.unlabelled_images, step)
        kept_frames = batch.unlabelled_images[labels.kept]
        n_kept = kept_frames.shape[0]
        symmetric = self.config.use_symmetry and labels.with_axis.numel() > 0
        parts = [batch.labelled_images, kept_frames]
        if symmetric:
            parts.append(self.mirrored_inputs(kept_frames, labels))
        # One forward over every input: BatchNorm sees the whole step, as in the mean teacher.
        logits, levels = self.student_forward(torch.cat(parts))
        sup = self.supervised_loss(logits, batch.labelled_masks, levels, batch.labelled_pixel_mm)
        student_prob = torch.sigmoid(logits[n_labelled : n_labelled + n_kept])
        terms = {"seg": F.mse_loss(student_prob, labels.refinement.pseudo_label)}
        if symmetric:
            terms.update(self._symmetry_terms(student_prob, logits[n_labelled + n_kept :], labels))
        unsup = sum(terms.values())
        weight = self.ctx.consistency_weight(step)
        scalars = {"sup": float(sup.detach()), "unsup": float(unsup.detach()), "weight": weight}
        for name in ("seg", "aug", "mirror"):  # the same keys every step, 0 when switched off
            scalars[name] = float(terms[name].detach()) if name in terms else 0.0
        scalars["kept"] = n_kept / batch.unlabelled_images.shape[0]
        scalars["fitted"] = labels.with_axis.numel() / max(n_kept, 1)
        return StepOutput(sup + weight * unsup, scalars)

    @staticmethod
    def _symmetry_terms(
        student_prob: Tensor, composite_logits: Tensor, labels: PseudoLabels
    ) -> dict[str, Tensor]:
        """L_aug and L_mirror from the student's predictions on frames and composites.

        The mirrored target keeps its gradient (as in the reference code): the clean and the
        mirrored predictions are pulled towards each other, the clean one being anchored by
        L_seg.
        """
        composite_prob = torch.sigmoid(composite_logits)
        target = symmetry.mirrored_composites(student_prob[labels.with_axis], labels.axes)
        axes2 = torch.cat([labels.axes, labels.axes])
        return {
            "aug": F.mse_loss(composite_prob, target),
            "mirror": symmetry.mirror_loss(composite_prob, axes2),
        }
