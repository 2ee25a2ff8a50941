"""CAD: Confidence-Aware Adaptive Displacement (Xiao et al., arXiv 2502.00536), for one foreground.

Each step after the warm-up:
1. the EMA teacher predicts the unlabelled frames; confidence is max(p, 1 - p);
2. Largest Low-Confidence Region replacement (LLCR): in each frame, the largest 8-connected
   region below the confidence threshold, cut to the largest allowed area (a square window
   centred on its least confident pixel), is replaced by the same pixels of the other frame of
   the batch that the teacher is most confident about there;
3. Dynamic Threshold Escalation (DTE): the threshold and the allowed area grow linearly over
   the steps after the warm-up, so the network first sees small, very uncertain regions
   displaced, then larger ones as its predictions firm up;
4. cross pseudo supervision: the student and a peer network (same U-Net, own initialisation)
   each learn from the other's thresholded prediction on the unlabelled and the displaced
   frames, as in ABD (Chi et al., CVPR 2024), the closest published displacement method;
   without the peer, the student learns from the teacher's thresholded predictions instead
   (a plain mean teacher with displacement).

No code is public; the choices the paper leaves open are listed in docs/methods.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import ssl_ops
from ..losses import supervised_loss
from ..method_api import Batch, StepOutput, TrainContext
from .two_network import PartnerSpec, TwoNetworkMethod


@dataclass(frozen=True)
class CADConfig:
    use_displacement: bool = True  # LLCR: displaced copies of the unlabelled frames
    dynamic_thresholds: bool = True  # DTE; off: the start values throughout
    cross_peer: bool = True  # cross pseudo supervision with a peer network; off: teacher labels
    threshold_start: float = 0.80  # confidence below which a pixel is "low confidence"
    threshold_end: float = 0.95
    area_start: float = 0.05  # largest displaced region, as a fraction of the frame
    area_end: float = 0.20


def displacement_schedule(config: CADConfig, progress: float) -> tuple[float, float]:
    """(confidence threshold, largest region as a fraction of the frame) at `progress` in 0..1."""
    if not config.dynamic_thresholds:
        progress = 0.0
    threshold = config.threshold_start + (config.threshold_end - config.threshold_start) * progress
    area = config.area_start + (config.area_end - config.area_start) * progress
    return threshold, area


def confidence(prob: Tensor) -> Tensor:
    """max(p, 1 - p): how sure a one-foreground prediction is, 0.5..1."""
    return torch.maximum(prob, 1.0 - prob)


def low_confidence_regions(prob: Tensor, threshold: float, max_area: float) -> Tensor:
    """(B, 1, H, W) bool: each frame's largest connected region with confidence < `threshold`.

    A region larger than `max_area` x H x W pixels keeps only its pixels inside a square window
    of that area centred on its least confident pixel.
    """
    conf = confidence(prob)
    regions = ssl_ops.largest_component(conf < threshold)
    height, width = prob.shape[-2:]
    limit = max_area * height * width
    side = max(int(math.sqrt(limit)), 1)
    rows = torch.arange(height, device=prob.device).view(-1, 1)
    cols = torch.arange(width, device=prob.device).view(1, -1)
    for index in range(prob.shape[0]):
        region = regions[index, 0]
        if region.sum() <= limit:
            continue
        least = torch.where(region, conf[index, 0], torch.full_like(conf[index, 0], 2.0))
        row, col = divmod(int(torch.argmin(least)), width)
        top = min(max(row - side // 2, 0), max(height - side, 0))
        left = min(max(col - side // 2, 0), max(width - side, 0))
        window = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
        regions[index, 0] = region & window
    return regions


def choose_donors(prob: Tensor, regions: Tensor) -> Tensor:
    """(B,) index of the other frame most confident (mean) over each frame's region; -1 if none.

    A frame gets no donor when its region is empty or the batch holds no other frame.
    """
    conf = confidence(prob)[:, 0]  # (B, H, W)
    area = regions[:, 0].flatten(1).sum(1).float()  # (B,)
    # overlap[i, j]: mean confidence of frame j over region i.
    overlap = torch.einsum("ihw,jhw->ij", regions[:, 0].float(), conf) / area.clamp(min=1)[:, None]
    overlap.fill_diagonal_(-1.0)
    donors = overlap.argmax(dim=1)
    no_donor = (area == 0) | (prob.shape[0] < 2)
    return torch.where(no_donor, torch.full_like(donors, -1), donors)


def displace(images: Tensor, regions: Tensor, donors: Tensor) -> Tensor:
    """Copies of `images` whose region pixels come from their donor frame (donor -1: unchanged)."""
    has_donor = donors >= 0
    source = images[donors.clamp(min=0)]
    replace = regions & has_donor.view(-1, 1, 1, 1)
    return torch.where(replace, source, images)


class CAD(TwoNetworkMethod):
    name = "cad"
    Config = CADConfig
    needs_teacher = True
    partner_key = "peer"

    def partner_spec(self, ctx: TrainContext) -> PartnerSpec | None:
        """A peer U-Net like the student for cross pseudo supervision (none without it)."""
        return PartnerSpec() if self.config.cross_peer else None

    def displaced_frames(self, unlabelled: Tensor, teacher_prob: Tensor, step: int):
        """(displaced frames or None, scalars) for the step's unlabelled frames."""
        progress = ssl_ops.post_warmup_progress(self.ctx, step)
        threshold, max_area = displacement_schedule(self.config, progress)
        scalars = {"threshold": threshold, "max_area": max_area, "displaced": 0.0}
        if not self.config.use_displacement:
            return None, scalars
        regions = low_confidence_regions(teacher_prob, threshold, max_area)
        donors = choose_donors(teacher_prob, regions)
        used = regions & (donors >= 0).view(-1, 1, 1, 1)
        scalars["displaced"] = float(used.float().mean())
        return displace(unlabelled, regions, donors), scalars

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        ctx = self.ctx
        n_labelled = batch.labelled_images.shape[0]
        unlabelled = batch.unlabelled_images
        with torch.no_grad():
            teacher_prob = torch.sigmoid(ctx.teacher(unlabelled))
        displaced, scalars = self.displaced_frames(unlabelled, teacher_prob, step)
        unlabelled_parts = [unlabelled] if displaced is None else [unlabelled, displaced]
        inputs = torch.cat([batch.labelled_images, *unlabelled_parts])
        student_logits = ctx.student(inputs)
        sup = supervised_loss(student_logits[:n_labelled], batch.labelled_masks)
        if self.partner is not None:
            self.sync_partner()
            peer_logits = self.partner(inputs)
            sup = sup + supervised_loss(peer_logits[:n_labelled], batch.labelled_masks)
            unsup = self._cross_terms(
                student_logits, peer_logits, n_labelled, len(unlabelled_parts)
            )
        else:
            unsup = self._teacher_terms(student_logits[n_labelled:], teacher_prob, displaced)
        weight = ctx.consistency_weight(step)
        scalars.update(sup=float(sup.detach()), unsup=float(unsup.detach()), weight=weight)
        return StepOutput(sup + weight * unsup, scalars)

    @staticmethod
    def _cross_terms(student: Tensor, peer: Tensor, n_labelled: int, n_parts: int) -> Tensor:
        """Cross pseudo supervision, one mean per part (unlabelled, displaced), summed."""
        total = student.new_zeros(())
        for s_part, p_part in zip(
            student[n_labelled:].chunk(n_parts), peer[n_labelled:].chunk(n_parts), strict=True
        ):
            total = total + supervised_loss(s_part, ssl_ops.hard_labels(p_part))
            total = total + supervised_loss(p_part, ssl_ops.hard_labels(s_part))
        return total

    def _teacher_terms(self, student: Tensor, teacher_prob: Tensor, displaced: Tensor | None):
        """Student vs the teacher's thresholded predictions on each unlabelled part, summed."""
        targets = [(teacher_prob > 0.5).float()]
        if displaced is not None:
            with torch.no_grad():
                targets.append(ssl_ops.hard_labels(self.ctx.teacher(displaced)))
        parts = student.chunk(len(targets))
        return sum(supervised_loss(s, t) for s, t in zip(parts, targets, strict=True))
