"""contrastive-meta: mean-teacher fine-tuning from a contrastively pretrained encoder."""

from __future__ import annotations

import pytest
import torch
from hc_studio.core.training import pretrain
from hc_studio.core.training.checkpoint import CheckpointError
from hc_studio.core.training.method_api import Batch
from hc_studio.core.training.methods.contrastive_meta import (
    ContrastiveMeta,
    ContrastiveMetaConfig,
)
from hc_studio.models.unet import UNet


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from a second thread, only synchronisation waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_encoder(path, width: int = 4, seed: int = 9) -> UNet:
    torch.manual_seed(seed)
    network = UNet(width=width)
    pretrain.save_encoder(path, network, {"iterations": 0})
    return network


def test_encoder_option_loads_the_encoder_into_student_and_teacher(
    method_context, tmp_path
) -> None:
    pretrained = write_encoder(tmp_path / "encoder.pt")
    ctx = method_context(needs_teacher=True)
    head_before = ctx.student.head.weight.detach().clone()
    method = ContrastiveMeta(ContrastiveMetaConfig(encoder=str(tmp_path / "encoder.pt")))
    method.setup(ctx)
    for network in (ctx.student, ctx.teacher):
        state = network.state_dict()
        for key, value in pretrain.encoder_state(pretrained).items():
            assert torch.equal(state[key], value), key
    assert torch.equal(ctx.student.head.weight, head_before)  # the decoder keeps its own init


def test_an_encoder_of_another_width_is_refused_naming_the_file(method_context, tmp_path) -> None:
    write_encoder(tmp_path / "wide.pt", width=8)
    method = ContrastiveMeta(ContrastiveMetaConfig(encoder=str(tmp_path / "wide.pt")))
    with pytest.raises(CheckpointError, match=r"wide\.pt: encoder width=8"):
        method.setup(method_context(needs_teacher=True))


def test_step_is_a_mean_teacher_consistency(method_context) -> None:
    method = ContrastiveMeta(ContrastiveMetaConfig(noise_std=0.0))
    method.setup(method_context(needs_teacher=True))
    images = torch.rand(2, 1, 32, 48)
    masks = (images > 0.5).float()
    output = method.training_step(Batch(images, masks, images.clone()), 99)
    # Without noise the student and its identical EMA copy agree: nothing to learn unlabelled.
    assert output.scalars["unsup"] == pytest.approx(0.0, abs=1e-6)
    assert output.scalars["weight"] == pytest.approx(0.1)


def test_tiny_training_from_a_pretrained_encoder_ends_with_done(
    run_tiny_training, phantom_labelled, phantom_unlabelled, tmp_path
) -> None:
    encoder = tmp_path / "encoder.pt"
    settings = pretrain.PretrainSettings(iterations=2, batch_size=4, image_size=(32, 48), width=4)
    folders = [phantom_labelled, phantom_unlabelled]
    pretrain.pretrain(folders, encoder, settings, torch.device("cpu"), lambda event: None)
    events = run_tiny_training("contrastive-meta", "--set", f"encoder={encoder}")
    assert events[-1]["event"] == "done"
    start = next(e for e in events if e["event"] == "start")
    assert start["config"]["method_config"]["encoder"] == str(encoder)
