"""CAD: largest low-confidence region displacement, rising thresholds, cross pseudo supervision."""

from __future__ import annotations

import torch
from hc_studio.core.training.method_api import Batch
from hc_studio.core.training.methods.cad import (
    CAD,
    CADConfig,
    choose_donors,
    displace,
    displacement_schedule,
    low_confidence_regions,
)

H, W = 32, 48


def confident_maps(count: int) -> torch.Tensor:
    """Probability maps (count, 1, H, W) that are confident everywhere (0.99)."""
    return torch.full((count, 1, H, W), 0.99)


def batch(n: int = 2) -> Batch:
    generator = torch.Generator().manual_seed(1)
    masks = torch.zeros(n, 1, H, W)
    masks[:, :, 8:24, 12:36] = 1.0
    images = 0.2 + 0.5 * masks + 0.05 * torch.rand(masks.shape, generator=generator)
    return Batch(images, masks, torch.rand(n, 1, H, W, generator=generator))


def test_threshold_and_allowed_area_rise_over_training() -> None:
    config = CADConfig()
    start, middle, end = (displacement_schedule(config, p) for p in (0.0, 0.5, 1.0))
    assert start == (config.threshold_start, config.area_start)
    assert start[0] < middle[0] < end[0] == config.threshold_end
    assert start[1] < middle[1] < end[1] == config.area_end
    fixed = CADConfig(dynamic_thresholds=False)
    assert displacement_schedule(fixed, 1.0) == displacement_schedule(fixed, 0.0)


def test_method_reports_rising_thresholds_after_the_warmup(method_context) -> None:
    method = CAD(CADConfig(cross_peer=False))
    method.setup(method_context(True, total=100, warmup=10))
    early = method.training_step(batch(), 10).scalars
    late = method.training_step(batch(), 99).scalars
    assert early["threshold"] < late["threshold"] and early["max_area"] < late["max_area"]


def test_region_is_the_largest_low_confidence_component() -> None:
    prob = confident_maps(1)
    prob[0, 0, 2:6, 2:6] = 0.5  # 16 px
    prob[0, 0, 10:16, 20:28] = 0.6  # 48 px, the largest
    prob[0, 0, 25:27, 40:47] = 0.01  # confident background: not a candidate
    region = low_confidence_regions(prob, threshold=0.9, max_area=0.5)
    expected = torch.zeros(1, 1, H, W, dtype=torch.bool)
    expected[0, 0, 10:16, 20:28] = True
    assert torch.equal(region, expected)


def test_a_region_over_the_allowed_area_is_cut_around_its_least_confident_pixel() -> None:
    prob = confident_maps(1)
    prob[0, 0, 4:28, 6:42] = 0.7  # 864 px
    prob[0, 0, 20, 30] = 0.5  # least confident
    region = low_confidence_regions(prob, threshold=0.9, max_area=0.1)  # <= 153 px
    assert 0 < region.sum() <= 0.1 * H * W
    assert region[0, 0, 20, 30]
    assert not (region & (prob >= 0.9)).any()


def test_no_low_confidence_pixel_gives_an_empty_region() -> None:
    assert not low_confidence_regions(confident_maps(2), 0.9, 0.2).any()


def test_donor_is_the_other_frame_most_confident_over_the_region() -> None:
    prob = confident_maps(3)
    prob[0, 0, 10:16, 20:28] = 0.55  # frame 0's region
    prob[1, 0, 10:16, 20:28] = 0.7  # frame 1 is unsure there too
    regions = low_confidence_regions(prob, 0.9, 0.5)
    donors = choose_donors(prob, regions)
    assert donors[0] == 2  # frame 2 is confident over frame 0's region
    assert donors[2] == -1  # frame 2 has no region
    single = choose_donors(prob[:1], regions[:1])
    assert single.tolist() == [-1]  # no other frame in the batch


def test_displacement_copies_the_donor_inside_the_region_only() -> None:
    images = torch.stack([torch.full((1, H, W), float(v)) for v in (0.1, 0.5, 0.9)])
    regions = torch.zeros(3, 1, H, W, dtype=torch.bool)
    regions[0, 0, 5:10, 5:10] = True
    regions[1, 0, 0:3, 0:3] = True
    donors = torch.tensor([2, -1, -1])
    displaced = displace(images, regions, donors)
    assert torch.all(displaced[0][regions[0]] == 0.9)
    assert torch.all(displaced[0][~regions[0]] == 0.1)
    assert torch.equal(displaced[1:], images[1:])  # no donor: unchanged


def test_peer_network_is_an_extra_module_trained_from_the_warmup(method_context) -> None:
    method = CAD()
    method.setup(method_context(True))
    assert set(method.extra_modules()) == {"peer"}
    output = method.warmup_step(batch(), 0)
    assert "sup_partner" in output.scalars
    output.loss.backward()
    assert method.partner.head.weight.grad.abs().sum() > 0
    without = CAD(CADConfig(cross_peer=False))
    without.setup(method_context(True))
    assert without.extra_modules() == {}


def test_cross_pseudo_supervision_reaches_both_networks(method_context) -> None:
    method = CAD()
    method.setup(method_context(True))
    output = method.training_step(batch(), 99)
    assert output.scalars["displaced"] > 0 and output.scalars["unsup"] > 0
    output.loss.backward()
    for network in (method.ctx.student, method.partner):
        assert network.inc[0].weight.grad.abs().sum() > 0


def test_without_displacement_nothing_is_displaced(method_context) -> None:
    method = CAD(CADConfig(use_displacement=False))
    method.setup(method_context(True))
    assert method.training_step(batch(), 99).scalars["displaced"] == 0.0


def test_tiny_training_run_ends_with_done(run_tiny_training) -> None:
    events = run_tiny_training("cad")
    assert events[-1]["event"] == "done" and events[-1]["iteration"] == 4
