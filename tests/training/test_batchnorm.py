"""BatchNorm statistics recomputed for a network's own weights."""

from __future__ import annotations

import pytest
import torch
from hc_studio.core.training.batchnorm import recompute_batchnorm_statistics
from torch import nn


def test_the_statistics_become_those_of_the_frames_and_the_mode_is_kept() -> None:
    layer = nn.BatchNorm2d(1)
    layer.running_mean.fill_(5.0)
    layer.running_var.fill_(100.0)
    network = nn.Sequential(layer).eval()
    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    assert recompute_batchnorm_statistics(network, images, batch_size=6) == 1
    values = images.float() / 255.0
    assert float(layer.running_mean) == pytest.approx(float(values.mean()), rel=1e-5)
    assert float(layer.running_var) == pytest.approx(float(values.var()), rel=1e-4)
    assert not network.training


def test_a_network_without_batchnorm_is_left_alone() -> None:
    network = nn.Sequential(nn.Conv2d(1, 1, 1))
    before = {k: v.clone() for k, v in network.state_dict().items()}
    assert recompute_batchnorm_statistics(network, torch.zeros(2, 1, 4, 4, dtype=torch.uint8)) == 0
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())
