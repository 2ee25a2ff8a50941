"""C3S3: Complementary Competition and Contrastive Selection (He et al., arXiv 2506.07368;
public 3D code Y-TARL/C3S3), in 2D for one foreground.

Two sub-networks see the same labelled and unlabelled frames: the student (the network that
is exported) and a partner U-Net with the other bottleneck (dilated vs plain), standing in for
the paper's VNet / ResVNet pair. Each step after the warm-up:
1. Dynamic Complementary Competition: the network with the lower labelled loss
   (alpha BCE + (1 - alpha) Dice, alpha = 0.8 as in the code) wins the step; its prediction
   on the unlabelled frames, sharpened (sigmoid(logit / T), T = 0.1), is the target of the
   loser (mean squared error of probabilities);
2. agreement: the two networks' probabilities on the unlabelled frames are pulled together;
3. Outcome-Driven Contrastive Learning: in a band around the predicted head boundary, pixel
   features of both networks go through small projectors; where the two outcomes agree the
   two projections of a pixel are pulled together, where they disagree they are pushed
   apart (InfoNCE with the disagreement pixels as negatives).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import ssl_ops
from ..losses import soft_dice_loss, supervised_loss
from ..method_api import Batch, Method, StepOutput, TrainContext


@dataclass(frozen=True)
class C3S3Config:
    use_competition: bool = True  # winner teaches loser; off: each learns from the other
    use_contrastive: bool = True  # outcome-driven contrastive term near the boundary
    use_agreement: bool = True  # probabilities of the two networks pulled together
    heterogeneous: bool = True  # partner with the other bottleneck (dilated vs plain)
    competition_alpha: float = 0.8  # BCE share of the loss that decides the winner
    sharpen_temperature: float = 0.1
    contrast_temperature: float = 0.1
    contrast_weight: float = 1.0
    boundary_band: int = 7  # width in pixels of the band around the boundary (odd)
    contrast_samples: int = 512  # band pixels sampled per step
    projection_dim: int = 16


def competition_loss(logits: Tensor, masks: Tensor, alpha: float) -> Tensor:
    """alpha BCE + (1 - alpha) soft Dice: the score that decides which network wins."""
    bce = F.binary_cross_entropy_with_logits(logits, masks)
    return alpha * bce + (1.0 - alpha) * soft_dice_loss(torch.sigmoid(logits), masks)


def sharpen(logits: Tensor, temperature: float) -> Tensor:
    """p^(1/T) / (p^(1/T) + (1 - p)^(1/T)) = sigmoid(logit / T), without gradient."""
    return torch.sigmoid(logits.detach() / temperature)


def boundary_band(first: Tensor, second: Tensor, width: int) -> Tensor:
    """(B, 1, H, W) bool: pixels within `width` // 2 of either prediction's boundary.

    first, second: (B, 1, H, W) {0, 1} predictions; the band is the dilated union minus the
    eroded intersection, so it holds every disagreement pixel and the agreed pixels next to
    the boundary.
    """
    pad = width // 2
    union = torch.maximum(first, second)
    intersection = torch.minimum(first, second)
    dilated = F.max_pool2d(union, width, stride=1, padding=pad)
    eroded = -F.max_pool2d(-intersection, width, stride=1, padding=pad)
    return (dilated - eroded) > 0


def sample_pixels(band: Tensor, count: int) -> Tensor:
    """(N, 3) [frame, row, col] of up to `count` band pixels drawn without replacement."""
    positions = band[:, 0].nonzero()
    if positions.shape[0] > count:
        positions = positions[torch.randperm(positions.shape[0], device=band.device)[:count]]
    return positions


def outcome_contrast(proj_a: Tensor, proj_b: Tensor, agree: Tensor, temperature: float) -> Tensor:
    """InfoNCE over sampled pixels: agreed pixels are positives, disagreed ones negatives.

    proj_a, proj_b: (N, D) projections of the same N pixels by the two networks; agree: (N,)
    bool. Zero when there is no agreed pixel.
    """
    sim = F.cosine_similarity(proj_a, proj_b, dim=1) / temperature
    if agree.all() or not agree.any():  # no negative (log 1 = 0) or no positive
        return sim.new_zeros(())
    positives = sim[agree]
    negatives = torch.logsumexp(sim[~agree], dim=0).expand_as(positives)
    return (torch.logaddexp(positives, negatives) - positives).mean()


def _projector(channels: int, dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, dim))


class C3S3(Method):
    name = "c3s3"
    description = (
        "C3S3: two competing networks, the winner's sharpened prediction teaches the loser; "
        "contrastive selection at the boundary."
    )
    Config = C3S3Config
    needs_teacher = False

    def setup(self, ctx: TrainContext) -> None:
        super().setup(ctx)
        c = self.config
        self.partner = ssl_ops.build_partner(ctx.student, ctx.device, c.heterogeneous)
        width = ctx.student.config["width"]
        self.projectors = nn.ModuleDict(
            {
                "student": _projector(width, c.projection_dim),
                "partner": _projector(width, c.projection_dim),
            }
        ).to(ctx.device)

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"partner": self.partner, "projectors": self.projectors}

    def warmup_step(self, batch: Batch, step: int) -> StepOutput:
        self.partner.train(self.ctx.student.training)
        return ssl_ops.two_network_warmup(self.ctx.student, self.partner, batch)

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        c = self.config
        n_labelled = batch.labelled_images.shape[0]
        inputs = torch.cat([batch.labelled_images, batch.unlabelled_images])
        self.partner.train(self.ctx.student.training)
        logits_a, feats_a = self.ctx.student(inputs, return_features=True)
        logits_b, feats_b = self.partner(inputs, return_features=True)
        masks = batch.labelled_masks
        sup = supervised_loss(logits_a[:n_labelled], masks)
        sup = sup + supervised_loss(logits_b[:n_labelled], masks)
        with torch.no_grad():
            score_a = competition_loss(logits_a[:n_labelled], masks, c.competition_alpha)
            score_b = competition_loss(logits_b[:n_labelled], masks, c.competition_alpha)
        winner = 0 if score_a <= score_b else 1
        unl_a, unl_b = logits_a[n_labelled:], logits_b[n_labelled:]
        terms = {"compete": self._competition_term(unl_a, unl_b, winner)}
        if c.use_agreement:
            terms["agree"] = F.mse_loss(torch.sigmoid(unl_a), torch.sigmoid(unl_b))
        if c.use_contrastive:
            terms["contrast"] = c.contrast_weight * self._contrast_term(
                logits_a, logits_b, feats_a["decoder"], feats_b["decoder"]
            )
        unsup = sum(terms.values())
        weight = self.ctx.consistency_weight(step)
        scalars = {"sup": float(sup.detach()), "unsup": float(unsup.detach()), "weight": weight}
        for key in ("compete", "agree", "contrast"):
            scalars[key] = float(terms[key].detach()) if key in terms else 0.0
        scalars["winner"] = float(winner)  # 0: the student, 1: the partner
        return StepOutput(sup + weight * unsup, scalars)

    def _competition_term(self, unl_a: Tensor, unl_b: Tensor, winner: int) -> Tensor:
        """Loser vs the winner's sharpened prediction; without competition, both directions."""
        temperature = self.config.sharpen_temperature
        prob_a, prob_b = torch.sigmoid(unl_a), torch.sigmoid(unl_b)
        a_learns = F.mse_loss(prob_a, sharpen(unl_b, temperature))
        b_learns = F.mse_loss(prob_b, sharpen(unl_a, temperature))
        if not self.config.use_competition:
            return a_learns + b_learns
        return b_learns if winner == 0 else a_learns

    def _contrast_term(
        self, logits_a: Tensor, logits_b: Tensor, feats_a: Tensor, feats_b: Tensor
    ) -> Tensor:
        """Outcome-driven contrast on up to `contrast_samples` pixels of the boundary band."""
        c = self.config
        pred_a, pred_b = ssl_ops.hard_labels(logits_a), ssl_ops.hard_labels(logits_b)
        band = boundary_band(pred_a, pred_b, c.boundary_band)
        where = sample_pixels(band, c.contrast_samples)
        frame, row, col = where.unbind(1)
        proj_a = self.projectors["student"](feats_a[frame, :, row, col])
        proj_b = self.projectors["partner"](feats_b[frame, :, row, col])
        agree = pred_a[frame, 0, row, col] == pred_b[frame, 0, row, col]
        return outcome_contrast(proj_a, proj_b, agree, c.contrast_temperature)
