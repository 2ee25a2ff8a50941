"""Which network an architecture config describes: the one place that builds it.

A config is the `config` dict a network carries (`UNet.config`, `EfficientLiteUNet.config`),
saved in checkpoints and in an exported model's `hc_studio.architecture` metadata, so a run,
`--init`, `--adapt` and the exporter all rebuild the same network from it. Its "kind" names the
architecture; a config without one is a U-Net (every model exported before kinds existed).
No torch at import: the torch-free training settings take the kinds and multiples from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

UNET, EFFICIENTNET_LITE = "unet", "efficientnet-lite"
KINDS = (UNET, EFFICIENTNET_LITE)
# What input heights and widths must be multiples of: the U-Net's four 2x poolings, the
# EfficientNet-Lite0 encoder's total stride (each class's `multiple`, checked by a test).
SIZE_MULTIPLES = {UNET: 16, EFFICIENTNET_LITE: 32}


def network_kind(config: Mapping[str, Any]) -> str:
    """The architecture a config describes; ValueError for an unknown one."""
    kind = config.get("kind", UNET)
    if kind not in KINDS:
        raise ValueError(f"unknown network kind {kind!r}; known: {', '.join(KINDS)}")
    return kind


def build_network(config: Mapping[str, Any]) -> nn.Module:
    """A fresh (randomly initialised) network from its config."""
    options = {key: value for key, value in config.items() if key != "kind"}
    if network_kind(config) == EFFICIENTNET_LITE:
        from .efficientnet_lite import EfficientLiteUNet

        return EfficientLiteUNet(**options)
    from .unet import UNet

    return UNet(**options)


def size_multiple(config: Mapping[str, Any]) -> int:
    """What the network's input height and width must be multiples of."""
    return SIZE_MULTIPLES[network_kind(config)]
