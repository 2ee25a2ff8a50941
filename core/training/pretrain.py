"""Self-paced contrastive pretraining of the U-Net encoder with meta-labels.

After Peng et al., "Self-paced contrastive learning for semi-supervised medical image
segmentation with meta-labels" (NeurIPS 2021). Every frame, labelled or not, is seen as two
augmented views; the encoder's bottleneck, pooled and projected, is trained with a supervised
contrastive loss whose positives are the frames that share a meta-label that comes free with
the acquisition:

- the patient (`UnlabelledFrame.patient`: HC18's number before the first '_', a patients.csv);
- the pixel-size band (quantiles of the frames' pixel sizes), a stand-in for the depth setting
  and, since pixel size grows with head size, for the gestational stage.

Meta-label pairs are weak positives (two frames of one patient may show different planes), so
each weighs max(0, 1 - l_ij / gamma), l_ij being the pair's current loss, with the "age"
gamma growing over the run: at first only the easy pairs count, the hard ones later. The twin
view of the same frame is a sure positive and always weighs 1.

The result is a checkpoint in the training format whose network is a whole U-Net (encoder
trained, decoder as initialised), so `hc-studio train --init ENCODER.pt` starts from it;
`load_encoder` reads only the encoder part (for the `contrastive-meta` and `mn` methods).

Shapes: images (B, 1, h, w) float 0..1; embeddings (B, D) of unit length.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..dataset import DatasetLayoutError, ImportProblem, import_unlabelled_folder
from ..events import Checkpoint, Done, Event, ImportProblemEvent, Progress, Start, Status
from ..io import FrameReadError
from .augment import AugmentConfig, augment
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import as_float, resize_image

METHOD = "contrastive-meta"
ENCODER_PREFIXES = ("inc.", "downs.")  # the U-Net's encoder parameters
UNKNOWN = -1  # meta-label of a frame without that information
PROGRESS_INTERVAL_S = 0.5
# Views differ more than the training augmentation: contrastive learning needs hard views.
VIEW_AUGMENT = AugmentConfig(rotate_deg=20.0, scale=0.2, shift=0.1, brightness=0.2, contrast=0.2)


class PretrainError(ValueError):
    """The pretraining cannot run (no frames, unreadable folder); str() is for the user."""


@dataclass(frozen=True)
class PretrainSettings:
    """Everything that defines a pretraining run."""

    iterations: int = 500
    batch_size: int = 16  # frames per step (each seen twice)
    image_size: tuple[int, int] = (192, 288)
    width: int = 16  # U-Net first-level channels (must match the training's --width)
    norm: str = "batch"
    dilated_bottleneck: bool = False
    lr: float = 1e-3  # Adam, cosine decay to 0
    weight_decay: float = 1e-5
    temperature: float = 0.07  # the paper's
    gamma_start: float = 3.0  # self-paced age at the start (the paper's begin value)
    gamma_end: float = 20.0  # and at the end
    gamma_power: float = 0.5  # gamma(t) = start + (end - start) (t / T) ** power
    frames_per_patient: int = 2  # frames drawn together from one patient (meta-label positives)
    pixel_bands: int = 4  # quantile bands of the pixel size
    patient_weight: float = 1.0
    band_weight: float = 1.0
    hidden_dim: int = 256
    projection_dim: int = 128
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["image_size"] = list(self.image_size)
        return data


# ---------------------------------------------------------------------- frames and meta-labels


@dataclass
class MetaFrames:
    """Frames at the pretraining size with their meta-labels.

    images: (N, 1, h, w) uint8; patients, bands: (N,) long codes (bands UNKNOWN = -1 for a frame
    without a pixel size); band_edges_mm: the band boundaries; paths: each frame's file.
    """

    images: Tensor
    patients: Tensor
    bands: Tensor
    band_edges_mm: list[float]
    paths: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.images.shape[0]


def pixel_bands(pixel_mm: Sequence[float | None], count: int) -> tuple[np.ndarray, list[float]]:
    """((N,) band codes 0..count-1, UNKNOWN for None; the count - 1 inner edges in mm).

    Edges are quantiles of the known sizes, so the bands hold about as many frames each.
    """
    known = np.array([mm for mm in pixel_mm if mm is not None], dtype=np.float64)
    codes = np.full(len(pixel_mm), UNKNOWN, dtype=np.int64)
    if known.size == 0 or count < 1:
        return codes, []
    edges = np.quantile(known, np.arange(1, count) / count).tolist()
    for index, mm in enumerate(pixel_mm):
        if mm is not None:
            codes[index] = int(np.searchsorted(edges, mm, side="right"))
    return codes, [float(edge) for edge in edges]


def collect_frames(
    folders: Sequence[Path],
    size: tuple[int, int],
    pixel_bands_count: int,
    pixel_csv: Path | None = None,
    problems: list[ImportProblem] | None = None,
    status: Callable[[str], None] = lambda message: None,
) -> MetaFrames:
    """Every frame under `folders` (annotation images skipped) at `size`, with meta-labels.

    Unreadable files are appended to `problems` and skipped; raises PretrainError when a
    folder is missing or fewer than two frames are readable.
    """
    problems = problems if problems is not None else []
    images, patients, sizes_mm, paths = [], [], [], []
    for folder in folders:
        status(f"reading frames in {Path(folder).name}")
        try:
            imported = import_unlabelled_folder(folder, pixel_csv=pixel_csv, load_pixels=False)
        except DatasetLayoutError as error:
            raise PretrainError(str(error)) from None
        problems += imported.problems
        for frame in imported.unlabelled:
            try:
                pixels = frame.read_image()
            except FrameReadError as error:
                problems.append(ImportProblem(error.path, error.problem))
                continue
            images.append(resize_image(pixels, size))
            patients.append(f"{Path(folder).resolve()}::{frame.patient}")
            spacing = frame.spacing
            sizes_mm.append((spacing.row_mm + spacing.col_mm) / 2 if spacing.calibrated else None)
            paths.append(f"{frame.image_path}#{frame.index}")
    if len(images) < 2:
        names = ", ".join(Path(folder).name for folder in folders)
        raise PretrainError(f"{names}: contrastive pretraining needs at least two readable frames")
    codes = {name: code for code, name in enumerate(dict.fromkeys(patients))}
    bands, edges = pixel_bands(sizes_mm, pixel_bands_count)
    return MetaFrames(
        torch.from_numpy(np.stack(images)[:, None].copy()),
        torch.tensor([codes[name] for name in patients], dtype=torch.long),
        torch.from_numpy(bands),
        edges,
        paths,
    )


class PatientBatchSampler:
    """Batches that keep frames of one patient together, so patient positives occur.

    Patients are visited in shuffled epochs; each contributes up to `frames_per_patient` of its
    frames (drawn at random) until the batch is full. All draws come from `generator`.
    """

    def __init__(
        self, patients: Tensor, batch_size: int, frames_per_patient: int, generator: torch.Generator
    ) -> None:
        self.groups = [torch.nonzero(patients == p).flatten() for p in torch.unique(patients)]
        self.batch_size = min(batch_size, len(patients))
        self.frames_per_patient = max(frames_per_patient, 1)
        self.generator = generator
        self.order: list[int] = []

    def _next_group(self) -> Tensor:
        if not self.order:
            self.order = torch.randperm(len(self.groups), generator=self.generator).tolist()
        return self.groups[self.order.pop()]

    def next_indices(self) -> Tensor:
        """(batch_size,) frame indices."""
        chosen: list[Tensor] = []
        count = 0
        while count < self.batch_size:
            group = self._next_group()
            take = min(self.frames_per_patient, len(group), self.batch_size - count)
            pick = torch.randperm(len(group), generator=self.generator)[:take]
            chosen.append(group[pick])
            count += take
        return torch.cat(chosen)


# ---------------------------------------------------------------------- the self-paced loss


def self_paced_gamma(step: int, total: int, settings: PretrainSettings) -> float:
    """The age parameter at `step`: start + (end - start) (step / total) ** power."""
    progress = min(max(step / max(total, 1), 0.0), 1.0)
    span = settings.gamma_end - settings.gamma_start
    return settings.gamma_start + span * progress**settings.gamma_power


def self_paced_weights(pair_losses: Tensor, gamma: float) -> Tensor:
    """Soft self-paced weights max(0, 1 - l / gamma) of pair losses (no gradient)."""
    return (1.0 - pair_losses.detach() / gamma).clamp_min(0.0)


def meta_positive_mask(labels: Tensor) -> Tensor:
    """(N, N) bool: frames i != j sharing a known meta-label (UNKNOWN matches nothing)."""
    same = labels[:, None] == labels[None, :]
    known = (labels != UNKNOWN)[:, None] & (labels != UNKNOWN)[None, :]
    return same & known & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)


@dataclass
class ContrastiveTerms:
    loss: Tensor
    weak_weight: float  # mean self-paced weight of the meta-label pairs (nan without any)
    weak_pairs: int


def self_paced_contrastive_loss(
    first: Tensor, second: Tensor, labels: Tensor, gamma: float, temperature: float
) -> ContrastiveTerms:
    """Supervised contrastive loss over two views with self-paced meta-label positives.

    first, second: (B, D) unit embeddings of the two views of B frames; labels: (B,) meta-label
    codes. For anchor i among the 2B views, l_ij = -log softmax_j(s_ij / t) over j != i; its
    loss is sum_j w_ij l_ij / sum_j w_ij over its positives: the twin view (w = 1) and the views
    of frames with the same meta-label (self-paced w).
    """
    batch = first.shape[0]
    views = torch.cat([first, second])
    logits = views @ views.T / temperature
    self_mask = torch.eye(2 * batch, dtype=torch.bool, device=views.device)
    log_prob = logits - torch.logsumexp(logits.masked_fill(self_mask, -math.inf), 1, keepdim=True)
    pair_loss = -log_prob
    index = torch.arange(2 * batch, device=views.device)
    twin = index[:, None] == ((index + batch) % (2 * batch))[None, :]
    weak = meta_positive_mask(torch.cat([labels, labels])) & ~twin
    weights = torch.where(weak, self_paced_weights(pair_loss, gamma), torch.zeros_like(pair_loss))
    weights = weights + twin.float()
    loss = ((weights * pair_loss).sum(1) / weights.sum(1)).mean()
    weak_count = int(weak.sum())
    weak_weight = float(weights[weak].mean()) if weak_count else math.nan
    return ContrastiveTerms(loss, weak_weight, weak_count)


# ---------------------------------------------------------------------- networks


def encode(network: nn.Module, images: Tensor) -> Tensor:
    """The U-Net's bottleneck (B, 16 width, h/16, w/16), without running its decoder."""
    features = network.inc(images)
    for down in network.downs:
        features = down(F.max_pool2d(features, 2))
    return features


class Projector(nn.Sequential):
    """Global average pooling, a two-layer MLP, unit length: (B, C, h, w) -> (B, D)."""

    def __init__(self, channels: int, hidden: int, out: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, hidden),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Linear(hidden, out),
        )

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(super().forward(features), dim=1)


def encoder_state(network: nn.Module) -> dict[str, Tensor]:
    """The encoder's part of a U-Net state_dict."""
    return {k: v for k, v in network.state_dict().items() if k.startswith(ENCODER_PREFIXES)}


def save_encoder(path: Path, network: nn.Module, info: dict[str, Any]) -> None:
    """Write the pretrained network as a training-format checkpoint (atomically).

    "model" holds the whole U-Net (so `train --init` loads it); "pretrain" describes the run.
    """
    save_checkpoint(
        path,
        {
            "model": {"config": dict(network.config), "state": network.state_dict()},
            "pretrain": {"method": METHOD, "encoder_prefixes": list(ENCODER_PREFIXES), **info},
        },
    )


def load_encoder(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(U-Net config, encoder state_dict) of a checkpoint; raises CheckpointError naming it."""
    path = Path(path)
    state = load_checkpoint(path)
    model = state.get("model")
    if not isinstance(model, dict) or "config" not in model or "state" not in model:
        raise CheckpointError(f"{path.name}: holds no network")
    encoder = {k: v for k, v in model["state"].items() if k.startswith(ENCODER_PREFIXES)}
    if not encoder:
        raise CheckpointError(f"{path.name}: holds no U-Net encoder")
    return dict(model["config"]), encoder


def apply_encoder(network: nn.Module, path: str | Path) -> None:
    """Load the encoder of checkpoint `path` into the U-Net `network` (decoder untouched).

    Raises CheckpointError naming the file when its architecture differs from the network's.
    """
    config, encoder = load_encoder(path)
    ours = getattr(network, "config", {})
    for key in ("width", "in_channels", "norm", "dilated_bottleneck"):
        if key in config and key in ours and config[key] != ours[key]:
            raise CheckpointError(
                f"{Path(path).name}: encoder {key}={config[key]!r} does not match the network's "
                f"{key}={ours[key]!r} (train with --{key.replace('_', '-')} {config[key]}, or "
                "start from it with --init)"
            )
    missing = set(encoder_state(network)) - set(encoder)
    if missing:
        raise CheckpointError(f"{Path(path).name}: encoder lacks {sorted(missing)[0]}")
    network.load_state_dict(encoder, strict=False)


# ---------------------------------------------------------------------- the run


class ContrastivePretrainer:
    """Pretrains a U-Net encoder on `frames`; `run` emits events through `emit`."""

    META_LABELS = ("patient", "band")

    def __init__(
        self,
        settings: PretrainSettings,
        frames: MetaFrames,
        device: torch.device,
        emit: Callable[[Event], None] = lambda event: None,
    ) -> None:
        from hc_studio.models.unet import UNet

        self.settings, self.frames, self.device, self.emit = settings, frames, device, emit
        torch.manual_seed(settings.seed)
        self.network = UNet(
            width=settings.width, norm=settings.norm, dilated_bottleneck=settings.dilated_bottleneck
        ).to(device)
        channels = 16 * settings.width
        self.projectors = nn.ModuleDict(
            {
                name: Projector(channels, settings.hidden_dim, settings.projection_dim)
                for name in self.META_LABELS
            }
        ).to(device)
        parameters = [*encoder_params(self.network), *self.projectors.parameters()]
        self.optimizer = torch.optim.Adam(
            parameters, lr=settings.lr, weight_decay=settings.weight_decay
        )
        generator = torch.Generator().manual_seed(settings.seed)
        self.sampler = PatientBatchSampler(
            frames.patients, settings.batch_size, settings.frames_per_patient, generator
        )
        self.augment_generator = torch.Generator().manual_seed(settings.seed + 1)

    def learning_rate(self, step: int) -> float:
        """Cosine decay from the base rate to 0 over the run."""
        progress = step / max(self.settings.iterations, 1)
        return 0.5 * self.settings.lr * (1.0 + math.cos(math.pi * progress))

    def step(self, step: int) -> dict[str, float]:
        """One optimisation step; returns the scalars to report."""
        s = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(step)
        index = self.sampler.next_indices()
        images = as_float(self.frames.images[index], self.device)
        first, _ = augment(images, None, self.augment_generator, VIEW_AUGMENT)
        second, _ = augment(images, None, self.augment_generator, VIEW_AUGMENT)
        features = encode(self.network, torch.cat([first, second]))
        gamma = self_paced_gamma(step, s.iterations, s)
        labels = {"patient": self.frames.patients[index], "band": self.frames.bands[index]}
        weights = {"patient": s.patient_weight, "band": s.band_weight}
        total = torch.zeros((), device=self.device)
        scalars: dict[str, float] = {"gamma": gamma}
        for name, projector in self.projectors.items():
            first_z, second_z = projector(features).chunk(2)
            terms = self_paced_contrastive_loss(
                first_z, second_z, labels[name].to(self.device), gamma, s.temperature
            )
            total = total + weights[name] * terms.loss
            scalars[name] = float(terms.loss.detach())
            scalars[f"{name}_weight"] = terms.weak_weight
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return {"loss": float(total.detach()), **scalars}

    def run(self, out: Path) -> Done:
        """Train for the settings' iterations, write the encoder to `out`, return `done`."""
        s = self.settings
        self.network.train()
        started = window = time.perf_counter()
        images_in_window = 0
        for step in range(s.iterations):
            scalars = self.step(step)
            if not math.isfinite(scalars["loss"]):
                raise PretrainError(
                    f"the loss is not finite at iteration {step + 1}; try a lower --lr"
                )
            images_in_window += 2 * self.sampler.batch_size
            now = time.perf_counter()
            if step == 0 or step + 1 == s.iterations or now - window >= PROGRESS_INTERVAL_S:
                per_step = (now - started) / (step + 1)
                self.emit(
                    Progress(
                        iteration=step + 1,
                        total_iterations=s.iterations,
                        stage="pretrain",
                        losses=scalars,
                        lr=self.learning_rate(step),
                        images_per_s=images_in_window / max(now - window, 1e-9),
                        eta_s=per_step * (s.iterations - step - 1),
                    )
                )
                window, images_in_window = now, 0
        info = {
            "iterations": s.iterations,
            "frames": len(self.frames),
            "meta_labels": ["patient", "pixel-size band"],
            "band_edges_mm": self.frames.band_edges_mm,
            "settings": s.to_dict(),
        }
        save_encoder(out, self.network.cpu(), info)
        self.emit(Checkpoint(iteration=s.iterations, path=str(out), tag="encoder"))
        return Done(iteration=s.iterations, last_checkpoint=str(out))


def encoder_params(network: nn.Module) -> list[nn.Parameter]:
    """The parameters of the U-Net's encoder (the decoder gets no gradient in pretraining)."""
    return [p for name, p in network.named_parameters() if name.startswith(ENCODER_PREFIXES)]


def pretrain(
    folders: Sequence[Path],
    out: Path,
    settings: PretrainSettings,
    device: torch.device,
    emit: Callable[[Event], None],
    pixel_csv: Path | None = None,
) -> Done:
    """Collect the frames, emit `start`, pretrain, write `out`; returns the `done` event."""
    problems: list[ImportProblem] = []
    frames = collect_frames(
        folders,
        tuple(settings.image_size),
        settings.pixel_bands,
        pixel_csv,
        problems,
        lambda message: emit(Status(message=message)),
    )
    for problem in problems:
        emit(ImportProblemEvent(path=str(problem.path), problem=problem.problem))
    counts = {
        "frames": len(frames),
        "patients": int(frames.patients.unique().numel()),
        "with_pixel_size": int((frames.bands != UNKNOWN).sum()),
        "skipped": len(problems),
    }
    emit(
        Start(
            method=METHOD + "-pretrain",
            run_dir=str(out.parent),
            total_iterations=settings.iterations,
            counts=counts,
            config={
                **settings.to_dict(),
                "frames": [str(f) for f in folders],
                "device": str(device),
            },
        )
    )
    trainer = ContrastivePretrainer(settings, frames, device, emit)
    return trainer.run(out)
