"""BatchNorm running statistics recomputed for a network's own weights.

The EMA teacher (`schedules.ema_update`) averages the student's weights but copies the student's
current running statistics, so in evaluation mode its layers normalise with statistics of other
weights than their own. Recomputing them over training frames, as stochastic weight averaging
does (`torch.optim.swa_utils.update_bn`), gives the averaged weights their own statistics.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .data import as_float


def recompute_batchnorm_statistics(network: nn.Module, images: Tensor, batch_size: int = 16) -> int:
    """Replace the running mean and variance of every BatchNorm layer of `network` by their
    averages over `images` (uint8 (N, 1, H, W), 0..255) in batches of `batch_size`; returns
    the number of BatchNorm layers (0: nothing to do). The network's mode is kept."""
    from torch.optim.swa_utils import update_bn

    layers = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in network.modules())
    if layers and len(images):
        device = next(network.parameters()).device
        batches = (
            as_float(images[i : i + batch_size], device) for i in range(0, len(images), batch_size)
        )
        with torch.no_grad():
            update_bn(batches, network)
    return layers
