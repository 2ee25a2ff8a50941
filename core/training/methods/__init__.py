"""The registry of training methods: an explicit dict, importable without torch.

Each entry names the module and class that implement the method (imported only when the method is
loaded), with the one-line description the GUI shows. Add a method by writing one module under
this package and one entry here. Names are lower case with hyphens; `load_method` also accepts
underscores.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class MethodEntry:
    module: str  # relative to this package
    class_name: str
    description: str  # must equal the class's `description` (checked by a test)


REGISTRY: dict[str, MethodEntry] = {
    "supervised": MethodEntry(
        "supervised", "Supervised", "Labelled frames only: BCE + Dice (the baseline)."
    ),
    "mean-teacher": MethodEntry(
        "mean_teacher",
        "MeanTeacher",
        "Mean Teacher: EMA teacher, consistency between noisy student and teacher predictions.",
    ),
    "ersr": MethodEntry(
        "ersr",
        "ERSR",
        "ERSR: teacher-student with ellipse-refined, filtered, symmetry-consistent pseudo-labels.",
    ),
    "cad": MethodEntry(
        "cad",
        "CAD",
        "CAD: largest low-confidence region replaced from a confident frame, rising thresholds, "
        "cross pseudo supervision.",
    ),
    "m3hl": MethodEntry(
        "m3hl",
        "M3HL",
        "M3HL: labelled and unlabelled frames mixed both ways by block masks, high- and "
        "low-level feature consistency.",
    ),
    "c3s3": MethodEntry(
        "c3s3",
        "C3S3",
        "C3S3: two competing networks, the winner's sharpened prediction teaches the loser; "
        "contrastive selection at the boundary.",
    ),
    "transmedseg": MethodEntry(
        "transmedseg",
        "TransMedSeg",
        "TransMedSeg: mean teacher whose features are implicitly augmented towards the "
        "student's class statistics (ISDA-style bound).",
    ),
    "medl": MethodEntry(
        "medl",
        "MEDL",
        "MEDL: U-Net and EfficientNet-Lite evidential networks, class-aware Dempster fusion, "
        "asymptotic Fisher-information evidential loss.",
    ),
    "mn": MethodEntry(
        "mn",
        "MN",
        "M&N: U-Net co-trained with a pretrained partner on each other's pseudo-masks, "
        "learning-rate guided labelled share.",
    ),
    "contrastive-meta": MethodEntry(
        "contrastive_meta",
        "ContrastiveMeta",
        "Self-paced contrastive meta-label pretraining (hc-studio pretrain), then mean-teacher "
        "fine-tuning from that encoder.",
    ),
}


class UnknownMethodError(ValueError):
    pass


def canonical_name(name: str) -> str:
    """The registry key for `name` (case and '_' / '-' insensitive); raises UnknownMethodError."""
    key = name.strip().lower().replace("_", "-")
    if key not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownMethodError(f"unknown method {name!r}; known methods: {known}")
    return key


def load_method(name: str) -> type:
    """The Method subclass registered under `name` (imports torch)."""
    entry = REGISTRY[canonical_name(name)]
    module = importlib.import_module(f"{__name__}.{entry.module}")
    return getattr(module, entry.class_name)
