"""A 2D U-Net for one foreground class (the fetal head), as in SSL4MIS's `unet.py`.

Four 2x poolings, so the input height and width must be multiples of 16 (`UNet.multiple`).
Channels are `width * (1, 2, 4, 8, 16)`: 16-32-64-128-256 at the default width.

Normalisation is BatchNorm by default (the papers' choice; in evaluation mode it folds into the
convolutions, so the exported graph has no normalisation cost). GroupNorm is available for tiny
per-process batches: its statistics do not depend on the batch, so data-parallel runs need no
buffer synchronisation.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Norm = Literal["batch", "group"]
DEPTH = 4  # number of 2x poolings


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels // 2) or 1, channels)
    raise ValueError(f"unknown normalisation {kind!r}; use 'batch' or 'group'")


class ConvBlock(nn.Sequential):
    """Two (3x3 conv, norm, LeakyReLU) layers; `dilations` set each conv's dilation."""

    def __init__(
        self, in_ch: int, out_ch: int, norm: Norm, dilations: tuple[int, int] = (1, 1)
    ) -> None:
        layers: list[nn.Module] = []
        for index, dilation in enumerate(dilations):
            layers += [
                nn.Conv2d(
                    in_ch if index == 0 else out_ch,
                    out_ch,
                    3,
                    padding=dilation,
                    dilation=dilation,
                    bias=False,
                ),
                _norm(norm, out_ch),
                nn.LeakyReLU(0.01, inplace=True),
            ]
        super().__init__(*layers)


class UpBlock(nn.Module):
    """Bilinear 2x upsampling of the deeper features, 1x1 conv, concatenation, ConvBlock."""

    def __init__(self, deep_ch: int, skip_ch: int, out_ch: int, norm: Norm) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(deep_ch, skip_ch, 1)
        self.block = ConvBlock(2 * skip_ch, out_ch, norm)

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        up = F.interpolate(self.reduce(deep), size=skip.shape[-2:], mode="bilinear")
        return self.block(torch.cat([skip, up], dim=1))


class UNet(nn.Module):
    """U-Net returning logits `(B, 1, H, W)` for images `(B, 1, H, W)` (H, W multiples of 16).

    width: channels of the first level (16 -> 16-32-64-128-256).
    norm: "batch" (default) or "group".
    dilated_bottleneck: the bottleneck's two convs use dilations 2 and 4 (a wider receptive
        field, reported to help HC18 accuracy).
    """

    multiple = 2**DEPTH

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 16,
        norm: Norm = "batch",
        dilated_bottleneck: bool = False,
    ) -> None:
        super().__init__()
        channels = [width * 2**level for level in range(DEPTH + 1)]
        self.config = {
            "in_channels": in_channels,
            "width": width,
            "norm": norm,
            "dilated_bottleneck": dilated_bottleneck,
        }
        self.inc = ConvBlock(in_channels, channels[0], norm)
        self.downs = nn.ModuleList()
        for level in range(1, DEPTH + 1):
            dilations = (2, 4) if dilated_bottleneck and level == DEPTH else (1, 1)
            self.downs.append(ConvBlock(channels[level - 1], channels[level], norm, dilations))
        self.ups = nn.ModuleList(
            UpBlock(channels[level], channels[level - 1], channels[level - 1], norm)
            for level in range(DEPTH, 0, -1)
        )
        self.head = nn.Conv2d(channels[0], 1, 3, padding=1)

    def forward(
        self, images: Tensor, return_features: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Logits (B, 1, H, W); with `return_features`, also {"bottleneck": (B, 16w, H/16, W/16),
        "decoder": (B, w, H, W)} (the last decoder features, before the 1-channel head), and
        "levels": the coarser decoder levels' outputs, coarse to fine, with `level_channels`
        channels at strides 8, 4, 2 (what deep supervision reads)."""
        skips = [self.inc(images)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        features = skips.pop()
        bottleneck = features
        levels = []
        for up in self.ups:
            features = up(features, skips.pop())
            levels.append(features)
        logits = self.head(features)
        if return_features:
            return logits, {"bottleneck": bottleneck, "decoder": features, "levels": levels[:-1]}
        return logits

    @property
    def level_channels(self) -> list[int]:
        """Channels of the `levels` features, coarse to fine."""
        return [up.block[0].out_channels for up in self.ups][:-1]

    @property
    def decoder_channels(self) -> int:
        """Channels of the `decoder` features (the last decoder level, before the head)."""
        return int(self.config["width"])


class ExportWrapper(nn.Module):
    """The network as shipped: image (B, 1, H, W) in 0..1 -> probability (B, 1, H, W).

    `flip_average`: the probability is the mean of the network's on the image and, mirrored
    back, on the image mirrored left-right (test-time flip augmentation). Both run as one batch
    of 2B in the one graph, so a caller still makes one call per frame.
    """

    def __init__(self, network: nn.Module, flip_average: bool = False) -> None:
        super().__init__()
        self.network = network
        self.flip_average = flip_average

    def forward(self, image: Tensor) -> Tensor:
        if not self.flip_average:
            return torch.sigmoid(self.network(image))
        both = torch.sigmoid(self.network(torch.cat([image, image.flip(-1)])))
        # (2B, 1, H, W) -> (2, B, 1, H, W): the first half saw the image, the second its mirror.
        halves = both.reshape(2, -1, *both.shape[1:])
        return (halves[0] + halves[1].flip(-1)) / 2
