"""The U-Net: shapes, options and the export wrapper."""

from __future__ import annotations

import pytest
import torch
from hc_studio.models.networks import build_network
from hc_studio.models.unet import ExportWrapper, UNet


@pytest.mark.parametrize("size", [(32, 48), (64, 96), (48, 32)])
def test_logits_have_the_input_size(size) -> None:
    net = UNet(width=4).eval()
    assert net(torch.rand(2, 1, *size)).shape == (2, 1, *size)


def test_default_channels_are_16_to_256() -> None:
    net = UNet()
    assert net.inc[0].out_channels == 16 and net.downs[-1][0].out_channels == 256


def test_features_are_the_bottleneck_and_the_last_decoder_level() -> None:
    net = UNet(width=4).eval()
    logits, features = net(torch.rand(1, 1, 32, 48), return_features=True)
    assert features["bottleneck"].shape == (1, 64, 2, 3)
    assert features["decoder"].shape == (1, 4, 32, 48) and logits.shape == (1, 1, 32, 48)


@pytest.mark.parametrize("options", [{"norm": "group"}, {"dilated_bottleneck": True}])
def test_options_build_and_rebuild_from_config(options) -> None:
    net = UNet(width=4, **options)
    rebuilt = build_network(net.config)
    rebuilt.load_state_dict(net.state_dict())
    image = torch.rand(1, 1, 32, 48)
    assert torch.equal(net.eval()(image), rebuilt.eval()(image))


def test_export_wrapper_gives_probabilities() -> None:
    probability = ExportWrapper(UNet(width=4).eval())(torch.rand(1, 1, 32, 48))
    assert probability.min() >= 0 and probability.max() <= 1
