"""Weighting each labelled frame's supervised loss by its millimetres per network pixel (ERSR's
`pixel_size_weighting`): the pixel sizes, the per-frame loss, the option, the trainer's batches."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import write_hc18_folder
from hc_studio.core.spacing import Spacing
from hc_studio.core.training.data import DataOptions, FrameInfo, network_pixel_mm, prepare_data
from hc_studio.core.training.method_api import Batch, parse_config_overrides
from hc_studio.core.training.methods.ersr import ERSRConfig, losses
from hc_studio.core.training.stopping import StopSignal
from hc_studio.core.training.trainer import Trainer, TrainSettings
from test_ersr_method import WARMUP, make_batch, make_method


def _info(spacing: Spacing, shape: tuple[int, int]) -> FrameInfo:
    return FrameInfo("frame.png", 0, "001", spacing, shape)


def test_network_pixel_mm_scales_each_axis_to_the_network_input() -> None:
    infos = [
        _info(Spacing.square(0.1, "csv"), (540, 800)),
        _info(Spacing(0.1, 0.3, "csv"), (100, 200)),
    ]
    # (0.1 * 540/270 + 0.1 * 800/400) / 2 and (0.1 * 100/270 + 0.3 * 200/400) / 2
    expected = [0.2, (0.1 * 100 / 270 + 0.3 * 200 / 400) / 2]
    assert network_pixel_mm(infos, (270, 400)).tolist() == pytest.approx(expected)


def test_network_pixel_mm_is_none_when_a_frame_is_uncalibrated_or_there_is_none() -> None:
    calibrated = _info(Spacing.square(0.1, "csv"), (540, 800))
    assert network_pixel_mm([calibrated, _info(Spacing.uncalibrated(), (540, 800))], (8, 8)) is None
    assert network_pixel_mm([], (8, 8)) is None


@pytest.mark.parametrize("distance_weight", [0.0, 0.5])
def test_per_frame_losses_average_to_the_batch_loss(distance_weight: float) -> None:
    batch = make_batch()
    logits = torch.randn(batch.labelled_masks.shape, generator=torch.Generator().manual_seed(3))
    masks = batch.labelled_masks
    per_frame = losses.per_frame_supervised_loss(logits, masks, distance_weight)
    assert per_frame.shape == (2,) and float(per_frame[0]) != pytest.approx(float(per_frame[1]))
    batch_loss = losses.ersr_supervised_loss(logits, masks, distance_weight)
    assert float(per_frame.mean()) == pytest.approx(float(batch_loss), rel=1e-5)
    ones = losses.ersr_supervised_loss(logits, masks, distance_weight, torch.ones(2))
    assert float(ones) == pytest.approx(float(batch_loss), rel=1e-5)
    # All the weight on the first frame: its loss alone (weights of mean 1).
    first = losses.ersr_supervised_loss(logits, masks, distance_weight, torch.tensor([2.0, 0.0]))
    assert float(first) == pytest.approx(float(per_frame[0]), rel=1e-5)


def test_the_option_weighs_frames_by_their_pixel_size_in_both_stages() -> None:
    config = parse_config_overrides(ERSRConfig, {"pixel_size_weighting": "yes"})
    assert config.pixel_size_weighting and not ERSRConfig().pixel_size_weighting
    plain, weighted = make_method(), make_method(pixel_size_weighting=True)
    batch = dataclasses.replace(make_batch(), labelled_pixel_mm=torch.tensor([0.3, 0.1]))
    with torch.no_grad():
        logits = weighted.ctx.student(batch.labelled_images)
        per_frame = losses.per_frame_supervised_loss(logits, batch.labelled_masks)
    expected = float((per_frame * torch.tensor([1.5, 0.5])).mean())
    assert float(weighted.warmup_step(batch, 0).loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert float(plain.warmup_step(batch, 0).loss.detach()) == pytest.approx(
        float(per_frame.mean()), rel=1e-5
    )  # the switch off ignores the pixel sizes
    torch.manual_seed(2)
    sup_plain = plain.training_step(batch, WARMUP).scalars["sup"]
    torch.manual_seed(2)
    sup_weighted = weighted.training_step(batch, WARMUP).scalars["sup"]
    assert sup_weighted != pytest.approx(sup_plain, rel=1e-4)


def test_the_option_refuses_frames_without_a_pixel_size() -> None:
    method = make_method(pixel_size_weighting=True)
    with pytest.raises(ValueError, match="pixel_size_weighting needs the pixel size"):
        method.warmup_step(make_batch(), 0)


class _Events:
    def emit(self, event) -> None:
        pass


def test_the_trainer_gives_each_labelled_frame_its_pixel_size(tmp_path) -> None:
    folder = write_hc18_folder(tmp_path / "labelled", 6)
    sizes = [f"{index + 1:03d}_HC.png,{0.1 + 0.05 * index}" for index in range(6)]
    (folder / "pixel_size.csv").write_text("filename,pixel size(mm)\n" + "\n".join(sizes) + "\n")
    size = (32, 48)
    data = prepare_data(DataOptions(labelled_dir=folder, image_size=size, val_fraction=0.2))
    expected = network_pixel_mm(data.labelled.infos, size)
    assert expected is not None and len(set(expected.tolist())) > 1  # the phantoms' sizes differ
    settings = TrainSettings(method="ersr", iterations=2, batch_size=3, image_size=size, width=4)
    trainer = Trainer(
        settings, data, tmp_path / "run", _Events(), StopSignal(), torch.device("cpu")
    )
    sampler_state = trainer.labelled_sampler.state_dict()
    index = trainer.labelled_sampler.next_indices()
    trainer.labelled_sampler.load_state_dict(sampler_state)
    batch: Batch = trainer._batch(0)
    assert torch.equal(batch.labelled_pixel_mm, expected[index])
