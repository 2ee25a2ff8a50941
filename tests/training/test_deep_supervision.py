"""Deep supervision: training-only heads on the decoder's levels, and their weighted loss."""

from __future__ import annotations

import onnx
import pytest
import torch
import torch.nn.functional as F
from hc_studio.core.cli import main
from hc_studio.core.events import Done, parse_event
from hc_studio.core.run_folder import RunFolder
from hc_studio.core.training.deep_supervision import (
    AuxiliaryHeads,
    deep_supervision_loss,
    level_weights,
)
from hc_studio.models.unet import UNet


def train(capsys, *arguments: str) -> tuple[int, list]:
    """A tiny `hc-studio train` run in this process: (exit code, stdout events)."""
    tiny = ["--image-size", "32", "48", "--width", "4", "--batch-size", "2", "--device", "cpu"]
    code = main(["train", *tiny, "--threads", "1", "--no-stdin", *arguments])
    return code, [parse_event(line) for line in capsys.readouterr().out.splitlines()]


def test_the_finest_level_weighs_most_halving_towards_the_coarsest() -> None:
    assert level_weights(3) == [0.125, 0.25, 0.5]
    assert level_weights(1) == [0.5]


def test_heads_give_full_size_logits_per_level() -> None:
    network = UNet(width=4)
    _, features = network(torch.rand(2, 1, 32, 48), return_features=True)
    heads = AuxiliaryHeads(network.level_channels)
    level_logits = heads(features["levels"], (32, 48))
    assert [tuple(t.shape) for t in level_logits] == [(2, 1, 32, 48)] * 3
    with pytest.raises(ValueError, match="expected 3 decoder levels, got 2"):
        heads(features["levels"][1:], (32, 48))


def test_the_loss_is_the_weighted_sum_of_each_levels_loss() -> None:
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    level_logits = [torch.randn(2, 1, 8, 8) for _ in range(3)]
    each = [float(F.binary_cross_entropy_with_logits(t, target)) for t in level_logits]
    total = deep_supervision_loss(level_logits, target, F.binary_cross_entropy_with_logits)
    assert float(total) == pytest.approx(0.125 * each[0] + 0.25 * each[1] + 0.5 * each[2])


def test_an_ersr_run_trains_the_heads_and_exports_the_network_alone(
    capsys, phantom_labelled, phantom_unlabelled, tmp_path
):
    run = RunFolder(tmp_path / "run")
    code, events = train(
        capsys,
        "--labeled", str(phantom_labelled), "--unlabeled", str(phantom_unlabelled),
        "--method", "ersr", "--iterations", "3", "--warmup-iterations", "1",
        "--set", "deep_supervision_weight=1", "--out", str(run.path),
    )  # fmt: skip
    assert code == 0 and isinstance(events[-1], Done)
    state = torch.load(run.last_checkpoint, weights_only=True)
    heads = state["extra_modules"]["aux_heads"]
    assert sorted(heads) == [f"heads.{i}.{p}" for i in range(3) for p in ("bias", "weight")]
    # the heads are training-only: the exported graph holds the network's weights alone
    names = {t.name for t in onnx.load(str(run.model_file)).graph.initializer}
    assert names and not any("heads." in name for name in names)
