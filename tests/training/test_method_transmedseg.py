"""TransMedSeg: the ISDA-style bound, the head's patch features, the class memory."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hc_studio.core.training.method_api import Batch
from hc_studio.core.training.methods.transmedseg import (
    ClassStatistics,
    TransMedSeg,
    TransMedSegConfig,
    isda_bce_bound,
    patch_features,
)

H, W = 32, 48


def batch() -> Batch:
    generator = torch.Generator().manual_seed(1)
    masks = torch.zeros(2, 1, H, W)
    masks[:, :, 8:24, 12:36] = 1.0
    images = 0.2 + 0.5 * masks + 0.05 * torch.rand(masks.shape, generator=generator)
    return Batch(images, masks, images.flip(-1))


def logits_and_labels() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    logits = 3 * torch.randn(2, 1, 8, 8, generator=generator)
    return logits, (torch.rand(2, 1, 8, 8, generator=generator) > 0.5).float()


def test_bound_equals_the_plain_loss_at_zero_covariance_and_exceeds_it_otherwise() -> None:
    logits, labels = logits_and_labels()
    plain = F.binary_cross_entropy_with_logits(logits, labels)
    zero = torch.zeros(2)
    assert torch.isclose(isda_bce_bound(logits, labels, zero, zero, 0.5), plain)
    for quad in (torch.tensor([0.3, 0.0]), torch.tensor([0.0, 2.0]), torch.tensor([1.0, 4.0])):
        assert isda_bce_bound(logits, labels, quad, zero, 0.5) > plain
    assert torch.isclose(isda_bce_bound(logits, labels, torch.ones(2), zero, 0.0), plain)


def test_bound_is_above_the_sampled_expected_loss() -> None:
    """E[BCE(w.a~ + b)] over a~ ~ N(a + lambda dmu, lambda Sigma) <= the closed-form bound."""
    generator = torch.Generator().manual_seed(3)
    dim, strength = 6, 0.5
    w, bias = torch.randn(dim, generator=generator), 0.2
    feature = torch.randn(dim, generator=generator)
    root = 0.5 * torch.randn(dim, dim, generator=generator)
    cov, shift_vec = root @ root.T, 0.3 * torch.randn(dim, generator=generator)
    quad, shift = (w @ cov @ w).expand(2), (w @ shift_vec).expand(2)
    samples = (
        feature
        + strength * shift_vec
        + (strength**0.5) * (torch.randn(200_000, dim, generator=generator) @ root.T)
    )
    for label in (0.0, 1.0):
        target = torch.full((200_000,), label)
        sampled = F.binary_cross_entropy_with_logits(samples @ w + bias, target)
        logit = (feature @ w + bias).view(1, 1, 1, 1)
        labels = torch.full_like(logit, label)
        bound = isda_bce_bound(logit, labels, quad, shift, strength)
        shifted_only = isda_bce_bound(logit, labels, torch.zeros(2), shift, strength)
        assert shifted_only < sampled <= bound + 1e-3  # the spread costs, the bound covers it


def test_mean_shift_moves_the_logit_towards_the_student_means() -> None:
    logits, labels = torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    towards_foreground = isda_bce_bound(logits, labels, torch.zeros(2), torch.tensor([0, 2.0]), 1)
    assert torch.isclose(towards_foreground, F.softplus(torch.tensor(-2.0)))


def test_patch_features_reproduce_the_head_logits(method_context) -> None:
    head = method_context(True).student.head
    features = torch.randn(2, 4, H, W)
    where = torch.tensor([[0, 0, 0], [1, 5, 7], [1, H - 1, W - 1], [0, 10, 0]])
    patches = patch_features(features, where)
    assert patches.shape == (4, 9 * 4)
    expected = head(features)[where[:, 0], 0, where[:, 1], where[:, 2]]
    computed = patches @ head.weight.flatten() + head.bias
    assert torch.allclose(computed, expected, atol=1e-5)


def test_memory_holds_the_class_statistics() -> None:
    generator = torch.Generator().manual_seed(4)
    memory = ClassStatistics(3, momentum=0.9, device=torch.device("cpu"))
    student = torch.randn(500, 3, generator=generator) * torch.tensor([1.0, 2.0, 0.5])
    labels = torch.arange(500) % 2
    memory.update(student, student + 1.0, labels)  # the first update fills the memory
    background = student[labels == 0]
    assert torch.allclose(memory.student_mean[0], background.mean(0))
    assert torch.allclose(memory.student_cov[0], torch.cov(background.T, correction=0))
    assert torch.allclose(memory.teacher_mean[0], background.mean(0) + 1.0)
    memory.update(student + 10.0, student, labels)  # later updates move by 1 - momentum
    assert torch.allclose(memory.student_mean[1], student[labels == 1].mean(0) + 1.0, atol=1e-5)
    restored = ClassStatistics(3, 0.9, torch.device("cpu"))
    restored.load(memory.state())
    assert torch.equal(restored.student_cov, memory.student_cov)


def test_tsa_trains_the_head_and_grows_with_lambda(method_context) -> None:
    method = TransMedSeg()
    method.setup(method_context(True, total=100, warmup=10))
    assert method.strength(10) == 0.0 and method.strength(99) == TransMedSegConfig().lambda0
    output = method.training_step(batch(), 99)
    assert output.scalars["tsa"] > 0 and bool(method.memory.filled.all())
    output.loss.backward()
    assert method.ctx.student.head.weight.grad.abs().sum() > 0
    assert "memory" in method.state_dict()


def test_without_tsa_the_method_is_a_mean_teacher(method_context) -> None:
    method = TransMedSeg(TransMedSegConfig(use_tsa=False))
    method.setup(method_context(True))
    scalars = method.training_step(batch(), 99).scalars
    assert scalars["tsa"] == 0.0 and not bool(method.memory.filled.any())


def test_tiny_training_run_ends_with_done(run_tiny_training) -> None:
    events = run_tiny_training("transmedseg", "--set", "lambda0=1.0")
    assert events[-1]["event"] == "done" and events[-1]["iteration"] == 4
