"""Fine-tuning after self-paced contrastive pretraining with meta-labels (Peng et al. 2021).

The paper's second stage: the network whose encoder was pretrained by `hc-studio pretrain`
(`core.training.pretrain`) is fine-tuned semi-supervised. Here that is a mean teacher (as in
`mean_teacher`: noisy student and EMA-teacher inputs, probability MSE with the ramped weight)
starting from the pretrained encoder, given either as `--init ENCODER.pt` (the whole network)
or as `--set encoder=ENCODER.pt` (only the encoder is loaded, into the student and teacher).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..losses import probability_mse, supervised_loss
from ..method_api import Batch, Method, StepOutput
from ..ssl_ops import input_noise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContrastiveMetaConfig:
    encoder: str = ""  # encoder checkpoint from `hc-studio pretrain` (or use --init)
    noise_std: float = 0.1  # mean-teacher input noise, as in the mean-teacher method
    noise_clip: float = 0.2


class ContrastiveMeta(Method):
    name = "contrastive-meta"
    description = (
        "Self-paced contrastive meta-label pretraining (hc-studio pretrain), then mean-teacher "
        "fine-tuning from that encoder."
    )
    Config = ContrastiveMetaConfig
    needs_teacher = True

    def setup(self, ctx) -> None:
        from ..pretrain import apply_encoder

        super().setup(ctx)
        if not self.config.encoder:
            log.info(
                "contrastive-meta: no --set encoder given; the encoder comes from --init when "
                "given, else from a random initialisation"
            )
            return
        for network in (ctx.student, ctx.teacher):
            apply_encoder(network, self.config.encoder)

    def _noisy(self, images: torch.Tensor) -> torch.Tensor:
        return input_noise(images, self.config.noise_std, self.config.noise_clip)

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        ctx = self.ctx
        n_labelled = batch.labelled_images.shape[0]
        unlabelled = batch.unlabelled_images
        logits = ctx.student(torch.cat([batch.labelled_images, self._noisy(unlabelled)]))
        sup = supervised_loss(logits[:n_labelled], batch.labelled_masks)
        with torch.no_grad():
            teacher_logits = ctx.teacher(self._noisy(unlabelled))
        unsup = probability_mse(logits[n_labelled:], teacher_logits)
        weight = ctx.consistency_weight(step)
        scalars = {"sup": float(sup.detach()), "unsup": float(unsup.detach()), "weight": weight}
        return StepOutput(sup + weight * unsup, scalars)
