"""contrastive-meta: mean-teacher fine-tuning from a contrastively pretrained encoder."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest
import torch
from hc_studio.core.training import pretrain
from hc_studio.core.training.checkpoint import CheckpointError, load_checkpoint
from hc_studio.core.training.method_api import Batch, TrainContext
from hc_studio.core.training.methods.contrastive_meta import (
    ContrastiveMeta,
    ContrastiveMetaConfig,
)
from hc_studio.models.unet import UNet

HEIGHT, WIDTH = 32, 48


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from a second thread, only synchronisation waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_context(needs_teacher: bool) -> TrainContext:
    """One CPU step's context: width-4 U-Net (seeded), 100 steps, warm-up 10, ramp-up 20."""
    torch.manual_seed(0)
    student = UNet(width=4)
    teacher = copy.deepcopy(student).requires_grad_(False) if needs_teacher else None
    return TrainContext(student, teacher, torch.device("cpu"), 100, 10, 20, (HEIGHT, WIDTH))


def train_events(cli_command, subprocess_env, tiny_run, *arguments: str) -> list[dict]:
    """`hc-studio train` (4 steps, tiny) in a child process; its stdout events."""
    command = cli_command(
        *tiny_run, "--iterations", "4", "--val-every", "4", "--no-stdin", *arguments
    )
    result = subprocess.run(
        command, capture_output=True, text=True, env=subprocess_env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def write_encoder(path, width: int = 4, seed: int = 9) -> UNet:
    torch.manual_seed(seed)
    network = UNet(width=width)
    pretrain.save_encoder(path, network, {"iterations": 0})
    return network


def test_encoder_option_loads_the_encoder_into_student_and_teacher(tmp_path) -> None:
    pretrained = write_encoder(tmp_path / "encoder.pt")
    ctx = make_context(needs_teacher=True)
    head_before = ctx.student.head.weight.detach().clone()
    method = ContrastiveMeta(ContrastiveMetaConfig(encoder=str(tmp_path / "encoder.pt")))
    method.setup(ctx)
    for network in (ctx.student, ctx.teacher):
        state = network.state_dict()
        for key, value in pretrain.encoder_state(pretrained).items():
            assert torch.equal(state[key], value), key
    assert torch.equal(ctx.student.head.weight, head_before)  # the decoder keeps its own init


def test_an_encoder_of_another_width_is_refused_naming_the_file(tmp_path) -> None:
    write_encoder(tmp_path / "wide.pt", width=8)
    method = ContrastiveMeta(ContrastiveMetaConfig(encoder=str(tmp_path / "wide.pt")))
    with pytest.raises(CheckpointError, match=r"wide\.pt: encoder width=8"):
        method.setup(make_context(needs_teacher=True))


def test_step_is_a_mean_teacher_consistency() -> None:
    method = ContrastiveMeta(ContrastiveMetaConfig(noise_std=0.0))
    method.setup(make_context(needs_teacher=True))
    images = torch.rand(2, 1, 32, 48)
    masks = (images > 0.5).float()
    output = method.training_step(Batch(images, masks, images.clone()), 99)
    # Without noise the student and its identical EMA copy agree: nothing to learn unlabelled.
    assert output.scalars["unsup"] == pytest.approx(0.0, abs=1e-6)
    assert output.scalars["weight"] == pytest.approx(0.1)


def test_tiny_training_from_a_pretrained_encoder_ends_with_done(
    cli_command, subprocess_env, tiny_run, phantom_labelled, phantom_unlabelled, tmp_path
) -> None:
    encoder = tmp_path / "encoder.pt"
    settings = pretrain.PretrainSettings(iterations=2, batch_size=4, image_size=(32, 48), width=4)
    folders = [phantom_labelled, phantom_unlabelled]
    pretrain.pretrain(folders, encoder, settings, torch.device("cpu"), lambda event: None)
    events = train_events(
        cli_command, subprocess_env, tiny_run,
        "--method", "contrastive-meta", "--set", f"encoder={encoder}",
        "--labeled", str(phantom_labelled), "--unlabeled", str(phantom_unlabelled),
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert events[-1]["event"] == "done"
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert checkpoint["method"]["config"]["encoder"] == str(encoder)
