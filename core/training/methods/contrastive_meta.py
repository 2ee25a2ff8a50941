"""Fine-tuning after self-paced contrastive pretraining with meta-labels (Peng et al. 2021).

The paper's second stage: the network whose encoder was pretrained by `hc-studio pretrain`
(`core.training.pretrain`) is fine-tuned semi-supervised. Here that is a mean teacher (the
teacher-student base, `teacher_student`, without extra terms) starting from the pretrained
encoder, given either as `--init ENCODER.pt` (the whole network) or as `--set
encoder=ENCODER.pt` (only the encoder is loaded, into the student and teacher).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .teacher_student import TeacherStudentConfig, TeacherStudentMethod

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContrastiveMetaConfig(TeacherStudentConfig):
    encoder: str = ""  # encoder checkpoint from `hc-studio pretrain` (or use --init)


class ContrastiveMeta(TeacherStudentMethod):
    name = "contrastive-meta"
    Config = ContrastiveMetaConfig

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
