"""The contract every registered training method keeps, checked on one CPU step."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import math

import pytest
import torch
from hc_studio.core.training.method_api import Batch, TrainContext
from hc_studio.core.training.methods import REGISTRY, UnknownMethodError, load_method
from hc_studio.models.unet import UNet

HEIGHT, WIDTH = 32, 48
TOTAL, WARMUP, RAMPUP = 100, 10, 20
STEP_AFTER_RAMP = TOTAL - 1


def _require_module(name: str) -> None:
    """A registered method must have its module: a missing one is a broken registry, not a skip."""
    module = f"hc_studio.core.training.methods.{REGISTRY[name].module}"
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"method {name!r} is registered but its module {module} is missing")


def _batch(generator: torch.Generator) -> Batch:
    images = torch.rand(2, 1, HEIGHT, WIDTH, generator=generator)
    yy, xx = torch.meshgrid(torch.arange(HEIGHT), torch.arange(WIDTH), indexing="ij")
    disc = (((yy - 16) / 10) ** 2 + ((xx - 24) / 14) ** 2 <= 1).float()
    masks = disc.expand(2, 1, HEIGHT, WIDTH).clone()
    return Batch(images + 0.5 * masks, masks, torch.rand(2, 1, HEIGHT, WIDTH, generator=generator))


def _context(method_cls) -> TrainContext:
    torch.manual_seed(0)
    student = UNet(width=4)
    teacher = None
    if method_cls.needs_teacher:
        teacher = copy.deepcopy(student)
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
    return TrainContext(
        student=student,
        teacher=teacher,
        device=torch.device("cpu"),
        total_iterations=TOTAL,
        warmup_iterations=WARMUP,
        rampup_iterations=RAMPUP,
        image_size=(HEIGHT, WIDTH),
        consistency=0.1,
    )


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_one_step_keeps_the_method_contract(name: str) -> None:
    _require_module(name)
    method_cls = load_method(name)
    assert method_cls.name == name
    assert method_cls.description == REGISTRY[name].description
    method = method_cls()
    ctx = _context(method_cls)
    method.setup(ctx)
    extra_parameters = [p for m in method.extra_modules().values() for p in m.parameters()]
    optimizer = torch.optim.SGD([*ctx.student.parameters(), *extra_parameters], lr=0.5)
    teacher_before = copy.deepcopy(ctx.teacher.state_dict()) if ctx.teacher is not None else None

    batch = _batch(torch.Generator().manual_seed(1))
    if not method_cls.uses_unlabelled:
        batch.unlabelled_images = None
    output = method.training_step(batch, STEP_AFTER_RAMP)
    assert output.loss.dim() == 0 and math.isfinite(float(output.loss.detach()))
    assert all(math.isfinite(v) for v in output.scalars.values())
    if method_cls.uses_unlabelled:
        assert output.scalars["unsup"] != 0.0, "unsupervised term is identically zero"
        assert output.scalars["weight"] > 0.0
    optimizer.zero_grad()
    output.loss.backward()
    first_conv = ctx.student.inc[0].weight
    for parameter in (first_conv, ctx.student.head.weight):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    student_before = first_conv.detach().clone()
    optimizer.step()
    assert not torch.equal(first_conv.detach(), student_before)
    if ctx.teacher is not None:
        assert all(p.grad is None for p in ctx.teacher.parameters())
        after = ctx.teacher.state_dict()
        for key, value in teacher_before.items():
            if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
                continue  # a teacher forward in train mode may update its own BN statistics
            assert torch.equal(after[key], value), f"teacher {key} changed without EMA"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_warmup_step_is_supervised_and_finite(name: str) -> None:
    _require_module(name)
    method_cls = load_method(name)
    method = method_cls()
    method.setup(_context(method_cls))
    batch = _batch(torch.Generator().manual_seed(2))
    batch.unlabelled_images = None
    output = method.warmup_step(batch, 0)
    assert math.isfinite(float(output.loss.detach()))
    assert output.loss.requires_grad


def test_unknown_method_fails_listing_the_known_ones() -> None:
    with pytest.raises(UnknownMethodError, match="known methods: .*mean-teacher.*supervised"):
        load_method("fixmatch-that-does-not-exist")


def test_underscore_names_are_accepted() -> None:
    assert load_method("mean_teacher").name == "mean-teacher"


def test_a_registered_method_without_its_module_fails(monkeypatch) -> None:
    entry = dataclasses.replace(REGISTRY["supervised"], module="no_such_module")
    monkeypatch.setitem(REGISTRY, "ghost", entry)
    with pytest.raises(pytest.fail.Exception, match="'ghost' is registered but its module"):
        _require_module("ghost")
