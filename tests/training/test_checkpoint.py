"""Checkpoint loading refuses bad files with a message naming them, never torch's advice."""

from __future__ import annotations

import fractions
import pickle

import pytest
import torch
from hc_studio.core.spacing import Spacing
from hc_studio.core.training import checkpoint as checkpoint_module
from hc_studio.core.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_network,
    load_network_state,
    save_checkpoint,
)
from hc_studio.core.training.data import FrameInfo, FrameSet, PreparedData
from hc_studio.core.training.stopping import StopSignal
from hc_studio.core.training.trainer import Trainer, TrainSettings
from hc_studio.models.unet import UNet


def _good(path) -> None:
    save_checkpoint(path, {"model": {"config": {}, "state": UNet(width=4).state_dict()}})


def test_a_truncated_checkpoint_is_named_and_called_truncated(tmp_path) -> None:
    good = tmp_path / "good.pt"
    _good(good)
    truncated = tmp_path / "last.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"^last\.pt: truncated or damaged"):
        load_checkpoint(truncated)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"^empty\.pt: truncated or damaged"):
        load_checkpoint(tmp_path / "empty.pt")


def test_a_file_with_code_is_refused_without_torchs_advice(tmp_path, monkeypatch) -> None:
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "load", spy)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"a": fractions.Fraction(1, 3)}))  # a plain pickle
    objects = tmp_path / "objects.pt"
    torch.save({"format": "hc-studio-checkpoint", "x": fractions.Fraction(1, 3)}, objects)
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint\n")
    expected = {
        legacy: "not a checkpoint file",
        objects: "holds Python objects",
        text: "not a checkpoint file",
    }
    for path, reason in expected.items():
        with pytest.raises(CheckpointError) as raised:
            load_checkpoint(path)
        message = str(raised.value)
        assert message.startswith(f"{path.name}: {reason}")
        assert "weights_only" not in message and "trust" not in message
    assert calls and all(flag is True for flag in calls)


def test_files_that_are_not_checkpoints(tmp_path) -> None:
    (tmp_path / "notes.pt").write_text("hello\n")
    with pytest.raises(CheckpointError, match=r"^notes\.pt: not a checkpoint file"):
        load_checkpoint(tmp_path / "notes.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"^list\.pt: not an HC Studio checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"^gone\.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "gone.pt")
    with pytest.raises(CheckpointError, match="a folder"):
        load_checkpoint(tmp_path)


def test_weights_of_another_architecture_are_refused_by_name() -> None:
    with pytest.raises(CheckpointError, match=r"^wide\.pt: its network does not fit .* shape"):
        load_network_state(UNet(width=4), UNet(width=8).state_dict(), "wide.pt")
    plain = UNet(width=4).state_dict()
    plain["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"1 unknown \(e\.g\. extra\.weight\)"):
        load_network_state(UNet(width=4), plain, "odd.pt")
    network = UNet(width=4)
    load_network_state(network, UNet(width=4).state_dict(), "same.pt")  # fits: loaded


class _Events:
    def __init__(self) -> None:
        self.events = []

    def emit(self, event) -> None:
        self.events.append(event)


def _tiny_trainer(tmp_path, width: int, **settings) -> Trainer:
    images = torch.zeros(2, 1, 32, 48, dtype=torch.uint8)
    info = FrameInfo("frame.png", 0, "001", Spacing.uncalibrated(), (32, 48))
    frames = FrameSet(images, images.clone(), [info, info])
    empty = FrameSet(images[:0], images[:0], [])
    run_settings = TrainSettings(
        method="mean-teacher",
        iterations=2,
        batch_size=2,
        image_size=(32, 48),
        width=width,
        **settings,
    )
    data = PreparedData(frames, empty, empty)
    return Trainer(run_settings, data, tmp_path, _Events(), StopSignal(), torch.device("cpu"))


def test_resuming_from_a_checkpoint_of_another_architecture(tmp_path) -> None:
    wide = _tiny_trainer(tmp_path / "wide", width=8)
    wide._save(is_best=False)
    state = load_checkpoint(wide.last_path)
    narrow = _tiny_trainer(tmp_path / "narrow", width=4)
    with pytest.raises(CheckpointError, match=r"^last\.pt: its network does not fit"):
        narrow.restore(state)
    del state["teacher"]
    with pytest.raises(CheckpointError, match=r"^last\.pt: incomplete checkpoint"):
        wide.restore(state)
    with pytest.raises(CheckpointError, match=r"^init\.pt: its network does not fit"):
        narrow.load_weights(UNet(width=8).state_dict(), "init.pt")


def test_the_trainer_hands_its_learning_rate_schedule_to_the_method(tmp_path) -> None:
    trainer = _tiny_trainer(tmp_path, width=4)
    assert trainer.method.ctx.lr_schedule is trainer.lr_schedule
    assert trainer.lr_schedule.power == trainer.settings.poly_power
    assert trainer.lr_schedule(0) == trainer.settings.lr


def test_load_network_names_a_checkpoint_without_one(tmp_path) -> None:
    _good(tmp_path / "good.pt")
    config, state = load_network(tmp_path / "good.pt")
    assert config == {} and "inc.0.weight" in state
    save_checkpoint(tmp_path / "other.pt", {"iteration": 3})
    with pytest.raises(CheckpointError, match=r"^other\.pt: holds no network"):
        load_network(tmp_path / "other.pt")


def test_the_trainer_shadows_labelled_frames_only(tmp_path) -> None:
    plain = _tiny_trainer(tmp_path / "plain", width=4)
    shadowed = _tiny_trainer(tmp_path / "shadowed", width=4, shadow_augment=0.999)
    for trainer in (plain, shadowed):
        trainer.labelled.images.fill_(200)  # an even echo everywhere: a shadow shows
    index = torch.arange(2)
    labelled = [t._draw(t.labelled, index, with_masks=True) for t in (plain, shadowed)]
    assert torch.equal(labelled[0][1], labelled[1][1])
    assert (labelled[1][0] < labelled[0][0] - 0.05).any()
    # Unlabelled draws of fresh trainers (the shadow's numbers moved the generator above).
    fresh = [
        _tiny_trainer(tmp_path / name, width=4, **extra)
        for name, extra in (("a", {}), ("b", {"shadow_augment": 0.999}))
    ]
    for trainer in fresh:
        trainer.labelled.images.fill_(200)
    unlabelled = [t._draw(t.labelled, index, with_masks=False) for t in fresh]
    assert torch.equal(unlabelled[0][0], unlabelled[1][0])
