"""The registry of training methods: an explicit dict, importable without torch.

Each entry names the module and class that implement the method (imported only when the method is
loaded), with the one-line description the GUI shows. This is the only place a description is
written: `Method` subclasses read theirs from here by name (`method_api.Method`), so the GUI and
`hc-studio train --list-methods` can show it without importing torch. Add a method by writing one
module (or package) under this package and one entry here. Names are lower case with hyphens;
`load_method` also accepts underscores.

Besides the registered methods, this package holds the bases they share (`teacher_student`,
`two_network`); those are not methods and have no entry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class MethodEntry:
    module: str  # relative to this package
    class_name: str
    description: str  # one line; the class's `description` is read from here


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
        "outcome-driven contrast over every pixel.",
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


def method_description(name: str) -> str:
    """The registered one-line description of the method `name` ("" when not registered)."""
    entry = REGISTRY.get(name)
    return entry.description if entry is not None else ""


def load_method(name: str) -> type:
    """The Method subclass registered under `name` (imports torch)."""
    entry = REGISTRY[canonical_name(name)]
    module = importlib.import_module(f"{__name__}.{entry.module}")
    return getattr(module, entry.class_name)
