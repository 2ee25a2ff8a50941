"""The protocol a semi-supervised method implements; the trainer does everything else.

A method is one small module under `core/training/methods/`: a `Method` subclass with a name
(its one-line description comes from the registry entry of that name), a frozen `Config`
dataclass and a `training_step`; `methods/teacher_student.py` and `methods/two_network.py` give
the bases that methods with an EMA teacher or a partner network share. The trainer owns the
loop, the labelled and unlabelled streams, the supervised warm-up, the learning-rate schedule, the
EMA teacher, validation, checkpoints, events, stop handling and seeding.

Shapes: images are `(B, 1, H, W)` float32 in 0..1 on `ctx.device`; masks are `(B, 1, H, W)`
float32 in {0, 1}; the networks return logits `(B, 1, H, W)` (apply `torch.sigmoid` for
probabilities).

Randomness inside a method (noise, perturbations) must come from torch's global generator (or
`random`/`numpy`): the trainer seeds these and checkpoints their states, so `--resume` gives the
same result as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .methods import method_description
from .schedules import PolySchedule


@dataclass
class Batch:
    """One training step's data.

    labelled_images: (Bl, 1, H, W) float in 0..1.
    labelled_masks: (Bl, 1, H, W) float in {0, 1}.
    unlabelled_images: (Bu, 1, H, W) float in 0..1, or None during the supervised warm-up and for
        methods with `uses_unlabelled = False`.
    labelled_pixel_mm: (Bl,) millimetres per network-input pixel of each labelled frame, or None
        when a labelled frame of the run has no pixel size (`data.network_pixel_mm`).
    """

    labelled_images: Tensor
    labelled_masks: Tensor
    unlabelled_images: Tensor | None = None
    labelled_pixel_mm: Tensor | None = None


@dataclass
class StepOutput:
    """What a step returns: the loss to backpropagate and scalars to report.

    Conventional scalar names: "sup" (supervised loss), "unsup" (unweighted unsupervised loss),
    "weight" (the unsupervised loss's weight at this step). Values are plain floats.
    """

    loss: Tensor
    scalars: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainContext:
    """What the trainer gives a method in `setup`.

    student: the network being trained (returns logits); call it for every forward that needs
        gradients, so that data-parallel gradient averaging sees them.
    teacher: the EMA copy of the student (requires_grad False, in train mode like the student;
        the trainer updates it after each optimiser step), or None unless `needs_teacher`.
    total_iterations: length of the run; warmup_iterations: leading supervised-only steps.
    rampup_iterations: length of the sigmoid ramp-up that follows the warm-up.
    consistency: the maximum unsupervised weight (`consistency_weight` reaches it after the ramp).
    lr_schedule: the trainer's learning-rate schedule (the same object sets the optimiser's
        rate); when not given, the trainer's default poly schedule over `total_iterations`.
    """

    student: nn.Module
    teacher: nn.Module | None
    device: torch.device
    total_iterations: int
    warmup_iterations: int
    rampup_iterations: int
    image_size: tuple[int, int]
    consistency: float = 0.1
    rank: int = 0
    world_size: int = 1
    lr_schedule: PolySchedule | None = None

    def __post_init__(self) -> None:
        if self.lr_schedule is None:
            self.lr_schedule = PolySchedule(0.01, self.total_iterations)

    def rampup(self, step: int) -> float:
        """0 during the warm-up, then the sigmoid ramp exp(-5 (1 - t)^2) up to 1 (Laine & Aila)."""
        return sigmoid_rampup(step - self.warmup_iterations, self.rampup_iterations)

    def consistency_weight(self, step: int, maximum: float | None = None) -> float:
        """Weight of the unsupervised loss at `step`: `maximum` (default `consistency`) x ramp."""
        top = self.consistency if maximum is None else maximum
        return top * self.rampup(step)


def sigmoid_rampup(current: float, length: float) -> float:
    """exp(-5 (1 - t)^2) with t = current / length clipped to [0, 1]; 0 before the start."""
    if current < 0:
        return 0.0
    if length <= 0:
        return 1.0
    t = min(max(current / length, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


@dataclass(frozen=True)
class NoConfig:
    """A method without options."""


class Method(ABC):
    """Base class of every training method.

    Subclasses set the class attributes and implement `training_step`; everything else has a
    default. The trainer calls, in order: `__init__(config)`, `setup(ctx)`, `extra_modules()`
    (their parameters are optimised with the student's and checkpointed), then per step
    `warmup_step` (while step < warmup_iterations) or `training_step`, then backward, optimiser
    step, EMA (when `needs_teacher`), then `on_step_end(step)`.
    """

    name: ClassVar[str]
    # One line, shown in the GUI; kept once, in the torch-free registry (`methods/__init__.py`),
    # and filled in here from the registered `name`.
    description: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig
    needs_teacher: ClassVar[bool] = False
    uses_unlabelled: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None:
            cls.description = method_description(name)

    def __init__(self, config: Any = None) -> None:
        self.config = self.Config() if config is None else config
        self.ctx: TrainContext | None = None

    def setup(self, ctx: TrainContext) -> None:
        """Keep the context; build losses and extra networks here (on `ctx.device`)."""
        self.ctx = ctx

    def extra_modules(self) -> dict[str, nn.Module]:
        """Extra trainable networks (heads, projectors), keyed by a checkpoint-stable name."""
        return {}

    def warmup_step(self, batch: Batch, step: int) -> StepOutput:
        """Supervised-only step used during the warm-up: BCE + soft Dice on the labelled frames."""
        from .losses import supervised_loss

        logits = self.ctx.student(batch.labelled_images)
        loss = supervised_loss(logits, batch.labelled_masks)
        return StepOutput(loss, {"sup": float(loss.detach())})

    @abstractmethod
    def training_step(self, batch: Batch, step: int) -> StepOutput:
        """The method's loss for one step after the warm-up."""

    def on_step_end(self, step: int) -> None:  # noqa: B027 (optional hook)
        """Called after the optimiser step and the EMA update."""

    def state_dict(self) -> dict[str, Any]:
        """Extra state to checkpoint (tensors, numbers), beyond `extra_modules`."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Restore what `state_dict` returned."""


def parse_config_overrides(config_cls: type, overrides: Mapping[str, str]) -> Any:
    """Build `config_cls` from its defaults and `key=value` strings (from `--set key=value`).

    Values are converted to the field's type (bool accepts true/false/yes/no/1/0). Raises
    ValueError naming the unknown key and listing the known ones, or naming the bad value.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    values: dict[str, Any] = {}
    for key, text in overrides.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ValueError(f"unknown option {key!r} for this method; known options: {known}")
        default = getattr(config_cls(), key)
        values[key] = _convert(key, text, default)
    return config_cls(**values)


def _convert(key: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"option {key}: expected true or false, got {text!r}")
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"option {key}: expected {kind.__name__}, got {text!r}") from None
    return text
