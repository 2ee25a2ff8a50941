"""MEDL: Mutual Evidential Deep Learning (He et al., arXiv 2505.12418), for one foreground.

Two networks of different architecture (the U-Net student and an EfficientNet-Lite0 U-Net,
`models.efficientnet_lite`) give evidential outputs: per pixel a Dirichlet over the two classes
(background, head), alpha >= 1, S = alpha_bg + alpha_fg. Each step after the warm-up:

1. both networks see the labelled and unlabelled frames; their Dirichlets become subjective
   opinions (belief b_k = (alpha_k - 1) / S, uncertainty u = 2 / S);
2. class-aware fusion: each network's belief in a class is discounted by how reliable that
   network has been on that class (running soft Dice on the labelled frames), then the two
   opinions are combined with Dempster's rule; the two networks' degree of conflict is moved
   back into the fused uncertainty (Dempster's normalisation alone would hide it). The fused
   opinion's argmax is the pseudo-label;
3. asymptotic Fisher-information evidential loss (I-EDL) on the unlabelled pixels: at first only
   the pixels with the lowest fused uncertainty, widening to all of them with the ramp-up;
4. on the labelled pixels the same evidential loss plus soft Dice, each pixel weighted by
   1 + ramp x (fused uncertainty), so hard pixels gain weight as training matures.

The student stays a one-logit U-Net (what is validated and exported): with its logit l and an
extra "strength" head t on its last decoder features, alpha_min = 1 + softplus(t) and
alpha_max = alpha_min exp(|l|) (the larger on l's side). That covers every two-class Dirichlet
and makes log(alpha_fg) - log(alpha_bg) = l exactly, so the exported sigmoid(l) is the
evidential expected probability alpha_fg / S. The shipped ONNX carries l only; the vacuity
u = 2 / S needs the strength head too (see `frame_uncertainty` and docs/methods.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import soft_dice_loss
from ..method_api import Batch, StepOutput, TrainContext
from .two_network import PartnerSpec, TwoNetworkMethod

CLASSES = 2  # background (channel 0), head (channel 1)
MAX_LOG_RATIO = 30.0  # |l| beyond this adds no evidence (exp(30) ~ 1e13 keeps float32 finite)


@dataclass(frozen=True)
class MEDLConfig:
    """MEDL's switches and constants."""

    class_aware: bool = True  # discount each network's opinion per class by its labelled Dice
    conflict_aware: bool = True  # the networks' conflict raises the fused uncertainty
    asymptotic: bool = True  # widen the unlabelled pixel set with the ramp; off: all pixels
    start_fraction: float = 0.5  # share of unlabelled pixels used when the ramp starts
    fisher_weight: float = 0.05  # weight of -log|I(alpha)| in the I-EDL loss
    kl_weight: float = 0.2  # weight of KL(Dir(alpha~) || Dir(1)), ramped up
    uncertainty_focus: float = 1.0  # labelled pixel weight 1 + focus x ramp x fused u
    dice_weight: float = 1.0  # soft Dice of alpha_fg / S on the labelled frames
    reliability_momentum: float = 0.9  # running mean of the per-class Dice reliabilities
    partner_width: int = 16  # decoder width of the EfficientNet-Lite0 partner
    partner_imagenet: bool = False  # start the partner's encoder from ImageNet (paper: scratch)


# ---------------------------------------------------------------------- evidence and opinions


def student_alpha(logits: Tensor, strength: Tensor) -> Tensor:
    """(B, 2, H, W) Dirichlet parameters from the student's logit l and strength t (B, 1, H, W).

    alpha_min = 1 + softplus(t); the class on l's side gets alpha_min exp(|l|), so that
    log alpha_fg - log alpha_bg = l (up to |l| = MAX_LOG_RATIO).
    """
    floor = 1.0 + F.softplus(strength)
    positive = F.relu(logits).clamp(max=MAX_LOG_RATIO)
    negative = F.relu(-logits).clamp(max=MAX_LOG_RATIO)
    return torch.cat([floor * torch.exp(negative), floor * torch.exp(positive)], dim=1)


def softplus_alpha(logits: Tensor) -> Tensor:
    """(B, 2, H, W) Dirichlet parameters 1 + softplus(z) from two-channel logits (the partner)."""
    return 1.0 + F.softplus(logits)


@dataclass
class Opinion:
    """A subjective-logic opinion per pixel: belief (B, 2, H, W), uncertainty (B, 1, H, W);
    belief.sum(1) + uncertainty = 1."""

    belief: Tensor
    uncertainty: Tensor

    @classmethod
    def from_alpha(cls, alpha: Tensor) -> Opinion:
        strength = alpha.sum(dim=1, keepdim=True)
        return cls((alpha - 1.0) / strength, CLASSES / strength)

    def projected(self) -> Tensor:
        """(B, 2, H, W) expected probabilities b + u / K."""
        return self.belief + self.uncertainty / CLASSES

    def to_alpha(self) -> Tensor:
        """(B, 2, H, W) the Dirichlet with this opinion: S = K / u, alpha = b S + 1."""
        strength = CLASSES / self.uncertainty.clamp_min(1e-12)
        return self.belief * strength + 1.0


def discount(opinion: Opinion, reliability: Tensor) -> Opinion:
    """Class-aware discounting: belief_k x r_k, the removed belief becoming uncertainty.

    reliability: (2,) per-class reliabilities in [0, 1] (background, head).
    """
    belief = opinion.belief * reliability.view(1, CLASSES, 1, 1)
    return Opinion(belief, 1.0 - belief.sum(dim=1, keepdim=True))


def dempster_combine(first: Opinion, second: Opinion) -> Opinion:
    """Dempster's rule for two opinions over exclusive classes (Han et al.'s reduced form).

    C = sum_{i != j} b1_i b2_j; b_k = (b1_k b2_k + b1_k u2 + b2_k u1) / (1 - C);
    u = u1 u2 / (1 - C).
    """
    b1, u1, b2, u2 = first.belief, first.uncertainty, second.belief, second.uncertainty
    agreement = (b1 * b2).sum(dim=1, keepdim=True)
    conflict = b1.sum(dim=1, keepdim=True) * b2.sum(dim=1, keepdim=True) - agreement
    scale = 1.0 / (1.0 - conflict).clamp_min(1e-6)
    return Opinion((b1 * b2 + b1 * u2 + b2 * u1) * scale, u1 * u2 * scale)


def degree_of_conflict(first: Opinion, second: Opinion) -> Tensor:
    """(B, 1, H, W) Josang's degree of conflict: projected distance x conjunctive certainty.

    0 for identical opinions, near 1 for two certain opinions on different classes.
    """
    distance = 0.5 * (first.projected() - second.projected()).abs().sum(dim=1, keepdim=True)
    certainty = (1.0 - first.uncertainty) * (1.0 - second.uncertainty)
    return distance * certainty


def fuse_opinions(first: Opinion, second: Opinion, conflict_aware: bool = True) -> Opinion:
    """Dempster combination; with `conflict_aware`, the fused belief is discounted by the two
    opinions' degree of conflict, which becomes uncertainty.

    Two agreeing opinions give a less uncertain fusion than either; two conflicting ones a more
    uncertain one (plain Dempster would report confidence even then).
    """
    fused = dempster_combine(first, second)
    if not conflict_aware:
        return fused
    keep = 1.0 - degree_of_conflict(first, second)
    belief = fused.belief * keep
    return Opinion(belief, 1.0 - belief.sum(dim=1, keepdim=True))


def class_dice(alpha: Tensor, masks: Tensor) -> Tensor:
    """(2,) soft Dice of the expected probabilities alpha / S per class on labelled frames."""
    prob = alpha / alpha.sum(dim=1, keepdim=True)
    target = torch.cat([1.0 - masks, masks], dim=1)
    dims = (0, 2, 3)
    intersection = (prob * target).sum(dims)
    return (2 * intersection + 1e-5) / (prob.sum(dims) + target.sum(dims) + 1e-5)


# ---------------------------------------------------------------------- the evidential loss


def _dirichlet_kl_to_uniform(alpha: Tensor) -> Tensor:
    """(B, 1, H, W) KL(Dir(alpha) || Dir(1, ..., 1))."""
    total = alpha.sum(dim=1, keepdim=True)
    return (
        torch.lgamma(total)
        - math.lgamma(CLASSES)
        - torch.lgamma(alpha).sum(dim=1, keepdim=True)
        + ((alpha - 1.0) * (torch.digamma(alpha) - torch.digamma(total))).sum(dim=1, keepdim=True)
    )


def _log_fisher_determinant(alpha: Tensor) -> Tensor:
    """(B, 1, H, W) log|I(alpha)| of the Dirichlet's Fisher information (I-EDL), in float64:
    sum_k log psi1(alpha_k) + log(1 - psi1(S) sum_k 1 / psi1(alpha_k))."""
    alpha64 = alpha.double()
    trigamma = torch.polygamma(1, alpha64)
    total = torch.polygamma(1, alpha64.sum(dim=1, keepdim=True))
    rest = 1.0 - total * (1.0 / trigamma).sum(dim=1, keepdim=True)
    log_det = torch.log(trigamma).sum(dim=1, keepdim=True) + torch.log(rest.clamp_min(1e-30))
    return log_det.to(alpha.dtype)


def fisher_evidential_loss(
    alpha: Tensor, target: Tensor, fisher_weight: float, kl_weight: float
) -> Tensor:
    """(B, 1, H, W) I-EDL loss (Deng et al. 2023) per pixel.

    alpha: (B, 2, H, W); target: (B, 2, H, W) one-hot. The squared error and variance of each
    class are weighted by its Fisher information psi1(alpha_k): a class with little evidence
    weighs more, so a wrongly labelled but uncertain pixel is not over-penalised.
    """
    total = alpha.sum(dim=1, keepdim=True)
    prob = alpha / total
    variance = prob * (1.0 - prob) / (total + 1.0)
    weighted = ((target - prob) ** 2 + variance) * torch.polygamma(1, alpha)
    loss = weighted.sum(dim=1, keepdim=True) - fisher_weight * _log_fisher_determinant(alpha)
    if kl_weight > 0:
        # The target's own evidence is removed: only misleading evidence is pulled to zero.
        misleading = target + (1.0 - target) * alpha
        loss = loss + kl_weight * _dirichlet_kl_to_uniform(misleading)
    return loss


def reliable_mask(uncertainty: Tensor, fraction: float) -> Tensor:
    """(B, 1, H, W) bool: the `fraction` of pixels with the lowest uncertainty (ties kept)."""
    flat = uncertainty.detach().flatten()
    count = min(max(math.ceil(fraction * flat.numel()), 1), flat.numel())
    threshold = torch.kthvalue(flat, count).values
    return uncertainty <= threshold


def one_hot(masks: Tensor) -> Tensor:
    """(B, 2, H, W) one-hot of (B, 1, H, W) {0, 1} masks."""
    return torch.cat([1.0 - masks, masks], dim=1)


# ---------------------------------------------------------------------- per-frame reliability


def frame_uncertainty(alpha: np.ndarray, band_px: int = 3) -> float:
    """A frame's reliability figure (torch-free): mean vacuity u = 2 / S around the head.

    alpha: (2, H, W) Dirichlet parameters (background, head) of one frame, from one network or
    fused. The mean is taken over the predicted head (alpha_fg / S > 0.5) grown by `band_px`
    pixels, where the outline is decided; over the whole frame when no head is predicted.
    Returns a value in (0, 1]: near 0 = much evidence, 1 = none.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim != 3 or alpha.shape[0] != CLASSES:
        raise ValueError(f"expected alpha of shape (2, H, W), got {alpha.shape}")
    total = alpha.sum(axis=0)
    vacuity = CLASSES / total
    head = (alpha[1] / total > 0.5).astype(np.uint8)
    if not head.any():
        return float(vacuity.mean())
    size = 2 * band_px + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    region = cv2.dilate(head, kernel).astype(bool)
    return float(vacuity[region].mean())


# ---------------------------------------------------------------------- the method


@dataclass
class _Evidence:
    """Both networks' Dirichlets on one step's images (labelled first)."""

    student: Tensor
    partner: Tensor


class MEDL(TwoNetworkMethod):
    name = "medl"
    Config = MEDLConfig

    def partner_spec(self, ctx: TrainContext) -> PartnerSpec:
        """The EfficientNet-Lite0 U-Net with one evidence channel per class."""
        c = self.config
        return PartnerSpec(
            kind="efficientnet-lite",
            out_channels=CLASSES,
            width=c.partner_width,
            imagenet=c.partner_imagenet,
        )

    def setup(self, ctx: TrainContext) -> None:
        super().setup(ctx)
        self.strength_head = nn.Conv2d(ctx.student.decoder_channels, 1, 3, padding=1).to(ctx.device)
        # Rows: student, partner; columns: background, head. 1 = fully reliable.
        self.reliability = torch.ones(2, CLASSES, device=ctx.device)

    def extra_modules(self) -> dict[str, nn.Module]:
        return {**super().extra_modules(), "strength_head": self.strength_head}

    def state_dict(self) -> dict[str, Tensor]:
        return {"reliability": self.reliability.clone()}

    def load_state_dict(self, state) -> None:
        self.reliability = state["reliability"].to(self.reliability.device)

    def evidence(self, images: Tensor) -> _Evidence:
        logits, features = self.ctx.student(images, return_features=True)
        strength = self.strength_head(features["decoder"])
        return _Evidence(student_alpha(logits, strength), softplus_alpha(self.partner(images)))

    def fused_opinion(self, student: Tensor, partner: Tensor) -> tuple[Opinion, Tensor]:
        """The class-aware fused opinion of two (B, 2, H, W) Dirichlets and their conflict."""
        first, second = Opinion.from_alpha(student), Opinion.from_alpha(partner)
        conflict = degree_of_conflict(first, second)
        if self.config.class_aware:
            first = discount(first, self.reliability[0])
            second = discount(second, self.reliability[1])
        return fuse_opinions(first, second, self.config.conflict_aware), conflict

    def unlabelled_fraction(self, step: int) -> float:
        """Share of unlabelled pixels (lowest fused uncertainty first) in the loss at `step`."""
        if not self.config.asymptotic:
            return 1.0
        start = self.config.start_fraction
        return start + (1.0 - start) * self.ctx.rampup(step)

    def _supervised(self, alpha: Tensor, masks: Tensor, weight: Tensor | None, step: int):
        c = self.config
        kl = c.kl_weight * self.ctx.rampup(step)
        per_pixel = fisher_evidential_loss(alpha, one_hot(masks), c.fisher_weight, kl)
        evidential = (per_pixel * weight).mean() if weight is not None else per_pixel.mean()
        prob = alpha[:, 1:] / alpha.sum(dim=1, keepdim=True)
        return evidential + c.dice_weight * soft_dice_loss(prob, masks)

    def _update_reliability(self, evidence: _Evidence, masks: Tensor) -> None:
        with torch.no_grad():
            dice = torch.stack(
                [class_dice(evidence.student, masks), class_dice(evidence.partner, masks)]
            )
            momentum = self.config.reliability_momentum
            self.reliability.mul_(momentum).add_((1.0 - momentum) * dice.clamp(0.0, 1.0))

    def warmup_step(self, batch: Batch, step: int) -> StepOutput:
        """Both networks learn the labelled frames (evidential loss + Dice), unweighted."""
        evidence = self.evidence(batch.labelled_images)
        masks = batch.labelled_masks
        sup = self._supervised(evidence.student, masks, None, step)
        sup_partner = self._supervised(evidence.partner, masks, None, step)
        self._update_reliability(evidence, masks)
        scalars = {"sup": float(sup.detach()), "sup_partner": float(sup_partner.detach())}
        return StepOutput(sup + sup_partner, scalars)

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        n_labelled = batch.labelled_images.shape[0]
        masks = batch.labelled_masks
        evidence = self.evidence(torch.cat([batch.labelled_images, batch.unlabelled_images]))
        with torch.no_grad():
            fused, conflict = self.fused_opinion(
                evidence.student.detach(), evidence.partner.detach()
            )
        # Labelled pixels: weight grows with the fused uncertainty as the ramp proceeds.
        focus = self.config.uncertainty_focus * self.ctx.rampup(step)
        pixel_weight = 1.0 + focus * fused.uncertainty[:n_labelled]
        sup = self._supervised(evidence.student[:n_labelled], masks, pixel_weight, step)
        sup_partner = self._supervised(evidence.partner[:n_labelled], masks, pixel_weight, step)
        # Unlabelled pixels: fused pseudo-labels, most reliable pixels first.
        fused_u = fused.uncertainty[n_labelled:]
        projected = fused.projected()[n_labelled:]
        pseudo = one_hot((projected[:, 1:] > projected[:, :1]).float())
        keep = reliable_mask(fused_u, self.unlabelled_fraction(step)).float()
        kl = self.config.kl_weight * self.ctx.rampup(step)
        unsup_terms = []
        for alpha in (evidence.student[n_labelled:], evidence.partner[n_labelled:]):
            per_pixel = fisher_evidential_loss(alpha, pseudo, self.config.fisher_weight, kl)
            unsup_terms.append((per_pixel * keep).sum() / keep.sum().clamp_min(1.0))
        unsup = unsup_terms[0] + unsup_terms[1]
        self._update_reliability(
            _Evidence(evidence.student[:n_labelled], evidence.partner[:n_labelled]), masks
        )
        weight = self.ctx.consistency_weight(step)
        scalars = {
            "sup": float(sup.detach()),
            "sup_partner": float(sup_partner.detach()),
            "unsup": float(unsup.detach()),
            "weight": weight,
            "reliable": float(keep.mean()),
            "fused_u": float(fused_u.mean()),
            "conflict": float(conflict[n_labelled:].mean()),
        }
        return StepOutput(sup + sup_partner + weight * unsup, scalars)
