"""M3HL: block masks, complementary mutual mixing, high/low-level feature consistency."""

from __future__ import annotations

import torch
from hc_studio.core.training.method_api import Batch
from hc_studio.core.training.methods.m3hl import (
    M3HL,
    M3HLConfig,
    block_masks,
    high_level_loss,
    low_level_loss,
)
from torch import nn

H, W = 32, 48
LABELLED_VALUE, UNLABELLED_VALUE = 0.2, 0.7


class FixedTeacher(nn.Module):
    """Predicts given logits whatever it sees, with features of a width-4 U-Net's shapes."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, images: torch.Tensor, return_features: bool = False):
        n = images.shape[0]
        features = {
            "bottleneck": torch.ones(n, 64, H // 16, W // 16),
            "decoder": torch.ones(n, 4, H, W),
        }
        return (self.logits[:n], features) if return_features else self.logits[:n]


def constant_batch() -> Batch:
    """Labelled frames of one grey level, unlabelled frames of another, masks half on."""
    masks = torch.zeros(2, 1, H, W)
    masks[:, :, :, : W // 2] = 1.0
    return Batch(
        torch.full((2, 1, H, W), LABELLED_VALUE), masks, torch.full((2, 1, H, W), UNLABELLED_VALUE)
    )


def test_block_masks_take_the_ratio_of_whole_blocks() -> None:
    torch.manual_seed(0)
    masks = block_masks(3, 192, 288, block=48, ratio=0.5, device="cpu")
    assert masks.shape == (3, 1, 192, 288)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    blocks = masks[:, 0].unfold(1, 48, 48).unfold(2, 48, 48)  # (3, 4, 6, 48, 48)
    assert torch.all(blocks.amin((-1, -2)) == blocks.amax((-1, -2)))  # constant per block
    assert blocks[..., 0, 0].sum((1, 2)).tolist() == [12.0, 12.0, 12.0]  # half of 24 blocks
    assert not torch.equal(masks[0], masks[1])  # each pair draws its own blocks


def test_block_side_scales_with_the_input(method_context) -> None:
    method = M3HL()
    method.setup(method_context(True))
    torch.manual_seed(0)
    images, *_ = method.mixed_inputs(constant_batch(), torch.zeros(2, 1, H, W))
    from_unlabelled = images[0, 0] == UNLABELLED_VALUE
    blocks = from_unlabelled.unfold(0, 8, 8).unfold(1, 8, 8)  # 8 px = 32 / 4
    assert torch.all(blocks.all((-1, -2)) | ~blocks.any((-1, -2)))


def test_mixed_pairs_are_complementary_and_each_pixel_has_one_source(method_context) -> None:
    method = M3HL()
    method.setup(method_context(True))
    data = constant_batch()
    pseudo = torch.ones(2, 1, H, W)  # unlabelled targets all 1, labelled half 1
    images, targets, weights, region, source = method.mixed_inputs(data, pseudo)
    assert source.tolist() == [0, 1]
    from_unlabelled = images == UNLABELLED_VALUE
    from_labelled = images == LABELLED_VALUE
    assert torch.all(from_unlabelled ^ from_labelled)  # exactly one source per pixel
    assert torch.equal(from_unlabelled, region.bool())
    assert torch.equal(region + (1 - region), torch.ones_like(region))
    # Direction a takes the unlabelled frame where its mask is 1, direction b where it is 0:
    # both halves of the frame reach the student, half the blocks each.
    assert region.mean((1, 2, 3)).tolist() == [0.5, 0.5]
    assert torch.equal(targets[from_unlabelled], torch.ones(int(from_unlabelled.sum())))
    assert torch.equal(targets[from_labelled], data.labelled_masks.expand_as(images)[from_labelled])
    assert torch.all(weights[from_unlabelled] == M3HLConfig().unlabelled_weight)
    assert torch.all(weights[from_labelled] == 1.0)


def test_pseudo_labels_keep_the_largest_component(method_context) -> None:
    logits = torch.full((2, 1, H, W), -5.0)
    logits[:, :, 4:20, 4:20] = 5.0  # large blob
    logits[:, :, 26:30, 40:44] = 5.0  # small blob
    method = M3HL()
    method.setup(method_context(True, teacher=FixedTeacher(logits)))
    pseudo, features = method.pseudo_labels(torch.zeros(2, 1, H, W))
    assert pseudo[:, :, 4:20, 4:20].all() and not pseudo[:, :, 26:30, 40:44].any()
    assert set(features) == {"bottleneck", "decoder"}
    plain = M3HL(M3HLConfig(largest_component=False))
    plain.setup(method_context(True, teacher=FixedTeacher(logits)))
    assert plain.pseudo_labels(torch.zeros(2, 1, H, W))[0][:, :, 26:30, 40:44].all()


def test_feature_losses_look_only_at_pixels_from_the_unlabelled_frame() -> None:
    teacher = torch.rand(2, 4, H, W)
    region = torch.zeros(2, 1, H, W)
    region[:, :, :, : W // 2] = 1.0
    student = teacher.clone()
    student[..., W // 2 :] += 3.0  # differs only outside the region
    assert low_level_loss(student, teacher, region) == 0.0
    assert low_level_loss(student, teacher, 1 - region) > 0.0
    high_t = torch.rand(2, 64, 2, 3)
    high_s = high_t.clone()
    high_s[..., 2:] = -high_s[..., 2:]  # the right third of the bottleneck
    assert high_level_loss(high_s, high_t, region) < 1e-6
    assert high_level_loss(high_s, high_t, torch.ones_like(region)) > 0.1


def test_switches_remove_the_feature_terms_and_the_mixing(method_context) -> None:
    method = M3HL(M3HLConfig(use_high=False, use_low=False))
    method.setup(method_context(True))
    scalars = method.training_step(constant_batch(), 99).scalars
    assert scalars["low"] == 0.0 and scalars["high"] == 0.0 and scalars["unsup"] == 0.0
    unmixed = M3HL(M3HLConfig(use_mix=False))
    unmixed.setup(method_context(True))
    images, _, weights, region, source = unmixed.mixed_inputs(
        constant_batch(), torch.ones(2, 1, H, W)
    )
    assert images.shape[0] == 4 and source.tolist() == [-1, -1, 0, 1]
    assert torch.all(images[:2] == LABELLED_VALUE) and torch.all(region[:2] == 0)
    output = unmixed.training_step(constant_batch(), 99)
    assert output.scalars["low"] > 0 and output.scalars["high"] > 0


def test_feature_consistency_ramps_up_and_trains_the_student(method_context) -> None:
    method = M3HL()
    method.setup(method_context(True, warmup=10, rampup=20))
    start = method.training_step(constant_batch(), 10).scalars["weight"]
    output = method.training_step(constant_batch(), 99)
    assert start < 0.01 * output.scalars["weight"]
    assert output.scalars["weight"] == M3HLConfig().feature_weight
    output.loss.backward()
    assert method.ctx.student.inc[0].weight.grad.abs().sum() > 0


def test_tiny_training_run_ends_with_done(run_tiny_training) -> None:
    events = run_tiny_training("m3hl", "--set", "mask_ratio=0.25")
    assert events[-1]["event"] == "done" and events[-1]["iteration"] == 4
