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
3. Outcome-Driven Contrastive Learning: the last decoder features of every pixel of both
   networks go through small projectors; a pixel both networks call head (then one both call
   background) is a positive whose two projections are pulled together, against every other
   pixel of the batch, so the pixels where the outcomes disagree are pushed apart. As in the
   code, the term is a mean over all pixels: disagreement pixels count by their share of the
   frames, which keeps the push-apart in proportion to the supervised loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hc_studio.models.networks import UNET, network_kind
from torch import Tensor, nn

from ..losses import soft_dice_loss, supervised_loss
from ..method_api import Batch, StepOutput, TrainContext
from .two_network import PartnerSpec, TwoNetworkMethod


@dataclass(frozen=True)
class C3S3Config:
    use_competition: bool = True  # winner teaches loser; off: each learns from the other
    use_contrastive: bool = True  # outcome-driven contrastive term over every pixel
    use_agreement: bool = True  # probabilities of the two networks pulled together
    heterogeneous: bool = True  # partner with the other bottleneck (dilated vs plain)
    competition_alpha: float = 0.8  # BCE share of the loss that decides the winner
    sharpen_temperature: float = 0.1
    contrast_temperature: float = 0.1
    contrast_weight: float = 1.0
    projection_dim: int = 16


def competition_loss(logits: Tensor, masks: Tensor, alpha: float) -> Tensor:
    """alpha BCE + (1 - alpha) soft Dice: the score that decides which network wins."""
    bce = F.binary_cross_entropy_with_logits(logits, masks)
    return alpha * bce + (1.0 - alpha) * soft_dice_loss(torch.sigmoid(logits), masks)


def sharpen(logits: Tensor, temperature: float) -> Tensor:
    """p^(1/T) / (p^(1/T) + (1 - p)^(1/T)) = sigmoid(logit / T), without gradient."""
    return torch.sigmoid(logits.detach() / temperature)


def class_contrast(similarity: Tensor, positive: Tensor) -> Tensor:
    """The code's outcome-driven contrast for one class, over every pixel of the batch.

    similarity: (N,) cosine similarity / temperature of the two networks' projections of each
    pixel; positive: (N,) bool, the pixels both networks assign to the class. Each pixel's
    numerator is exp(similarity) if it is a positive and 1 otherwise; the shared denominator
    sums exp(similarity) over the other pixels and 1 over the positives. The loss, a mean
    over all N pixels, pulls the positives' two projections together and pushes the other
    pixels' apart in proportion to their share of the softmax mass. It is returned minus
    log N (a constant), so that its value does not grow with the frame size: about 0 when
    every similarity is the same.
    """
    log_numerator = torch.where(positive, similarity, torch.zeros_like(similarity))
    log_denominator = torch.logsumexp(torch.where(positive, 0.0, similarity), dim=0)
    per_pixel = torch.logaddexp(log_numerator, log_denominator) - log_numerator
    return per_pixel.mean() - math.log(similarity.numel())


def outcome_contrast(
    proj_a: Tensor, proj_b: Tensor, pred_a: Tensor, pred_b: Tensor, temperature: float
) -> Tensor:
    """Head term plus background term of the outcome-driven contrast.

    proj_a, proj_b: (N, D) projections of the same N pixels by the two networks; pred_a,
    pred_b: (N,) bool hard outcomes (True: head). Positives of the head term are the pixels
    both call head, those of the background term the pixels both call background; the pixels
    where they disagree are never positive.
    """
    similarity = F.cosine_similarity(proj_a, proj_b, dim=1) / temperature
    both_head = pred_a & pred_b
    both_background = ~(pred_a | pred_b)
    return class_contrast(similarity, both_head) + class_contrast(similarity, both_background)


def pixel_rows(features: Tensor) -> Tensor:
    """(B, C, H, W) feature maps -> (B * H * W, C), one row per pixel (frame, row, col order)."""
    return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])


def _projector(channels: int, dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, dim))


class C3S3(TwoNetworkMethod):
    name = "c3s3"
    Config = C3S3Config
    needs_teacher = False

    def partner_spec(self, ctx: TrainContext) -> PartnerSpec:
        """A network like the student; with `heterogeneous`, a U-Net student's other bottleneck."""
        kind = network_kind(ctx.student.config)
        if self.config.heterogeneous and kind != UNET:
            raise ValueError(
                "c3s3's heterogeneous partner is the U-Net with the other bottleneck: use "
                f"--architecture unet, or --set heterogeneous=false for a partner like the {kind} "
                "student"
            )
        return PartnerSpec(flip_dilation=self.config.heterogeneous)

    def setup(self, ctx: TrainContext) -> None:
        super().setup(ctx)
        c = self.config
        width = ctx.student.decoder_channels
        self.projectors = nn.ModuleDict(
            {
                "student": _projector(width, c.projection_dim),
                "partner": _projector(width, c.projection_dim),
            }
        ).to(ctx.device)

    def extra_modules(self) -> dict[str, nn.Module]:
        return {**super().extra_modules(), "projectors": self.projectors}

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        c = self.config
        n_labelled = batch.labelled_images.shape[0]
        inputs = torch.cat([batch.labelled_images, batch.unlabelled_images])
        self.sync_partner()
        logits_a, feats_a = self.ctx.student(inputs, return_features=True)
        logits_b, feats_b = self.partner(inputs, return_features=True)
        masks = batch.labelled_masks
        sup_student = supervised_loss(logits_a[:n_labelled], masks)
        sup_partner = supervised_loss(logits_b[:n_labelled], masks)
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
        # "sup" is the student's alone, as in the warm-up, so the curve is continuous there.
        scalars = {
            "sup": float(sup_student.detach()),
            "sup_partner": float(sup_partner.detach()),
            "unsup": float(unsup.detach()),
            "weight": weight,
        }
        for key in ("compete", "agree", "contrast"):
            scalars[key] = float(terms[key].detach()) if key in terms else 0.0
        scalars["winner"] = float(winner)  # 0: the student, 1: the partner
        return StepOutput(sup_student + sup_partner + weight * unsup, scalars)

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
        """Outcome-driven contrast over every pixel of the batch (labelled and unlabelled).

        Gradient reaches both networks and both projectors, as in the code; the outcomes are
        hard labels without gradient.
        """
        proj_a = self.projectors["student"](pixel_rows(feats_a))
        proj_b = self.projectors["partner"](pixel_rows(feats_b))
        pred_a = logits_a.detach().flatten() > 0  # (B * H * W,), the order of pixel_rows
        pred_b = logits_b.detach().flatten() > 0
        return outcome_contrast(proj_a, proj_b, pred_a, pred_b, self.config.contrast_temperature)
