"""Patients: who a frame belongs to, and splits that never put one patient on both sides."""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PATIENTS_CSV = "patients.csv"
# HC18 names: NNN_HC.png, NNN_2HC.png (second frame of patient NNN), NNN_HC_Annotation.png.
_HC18_NAME = re.compile(r"^(\d+)_\d*HC(?:_Annotation)?\.[A-Za-z0-9]+$", re.IGNORECASE)


def patient_id(filename: str | Path, mapping: dict[str, str] | None = None) -> str:
    """The patient a frame file belongs to.

    `mapping` (from a `patients.csv`) is looked up by file name, then by stem; an HC18 name
    gives the number before its first '_' (`010_2HC.png` -> "010"); otherwise the stem.
    """
    path = Path(filename)
    if mapping:
        for key in (path.name, path.stem):
            if key in mapping:
                return mapping[key]
    match = _HC18_NAME.match(path.name)
    if match:
        return match.group(1)
    return path.stem


def read_patients_csv(path: str | Path) -> dict[str, str]:
    """Read `filename,patient` rows (a header line first) into {filename: patient}.

    Raises ValueError naming the file and line for a row without both values.
    """
    path = Path(path)
    mapping: dict[str, str] = {}
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or len(header) < 2:
            raise ValueError(f"{path.name}: expected a header 'filename,patient'")
        for line_no, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise ValueError(f"{path.name}:{line_no}: expected 'filename,patient', got {row!r}")
            mapping[row[0].strip()] = row[1].strip()
    return mapping


def _default_patient(item: object) -> str:
    return item.patient  # type: ignore[attr-defined]


def _split_patients(
    items: Sequence[T], fraction: float, seed: int, patient_of: Callable[[T], str]
) -> tuple[list[T], list[T]]:
    """(rest, chosen): whole patients, drawn in a seeded order, until `chosen` holds about
    `fraction` of the items; both sides keep at least one patient when there are two or more
    and 0 < fraction < 1. Each side keeps the items' input order."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    counts: dict[str, int] = {}
    for item in items:
        patient = patient_of(item)
        counts[patient] = counts.get(patient, 0) + 1
    patients = sorted(counts)
    random.Random(seed).shuffle(patients)
    target = fraction * len(items)
    chosen: set[str] = set()
    n_chosen = 0
    for patient in patients:
        # Take the next patient while that brings the count closer to the target.
        if abs(n_chosen + counts[patient] - target) >= abs(n_chosen - target):
            break
        chosen.add(patient)
        n_chosen += counts[patient]
    if len(patients) >= 2 and 0.0 < fraction < 1.0:
        if not chosen:
            chosen.add(patients[0])
        elif len(chosen) == len(patients):
            chosen.discard(patients[-1])
    if fraction == 1.0:
        chosen = set(patients)
    rest = [item for item in items if patient_of(item) not in chosen]
    picked = [item for item in items if patient_of(item) in chosen]
    return rest, picked


def split_by_patient(
    items: Sequence[T],
    val_fraction: float,
    seed: int,
    patient_of: Callable[[T], str] = _default_patient,
) -> tuple[list[T], list[T]]:
    """(train, val) with about `val_fraction` of the items in val, no patient on both sides.

    Deterministic for a seed; items need a `.patient` unless `patient_of` says otherwise.
    """
    return _split_patients(items, val_fraction, seed, patient_of)


def folds_by_patient(
    items: Sequence[T],
    k: int,
    seed: int,
    patient_of: Callable[[T], str] = _default_patient,
) -> list[list[T]]:
    """`k` folds of about equal size, no patient in two folds, every item in exactly one.

    Patients are taken in a seeded order, each into the fold with the fewest items so far (the
    first such fold on ties). Each fold keeps the items' input order. Raises ValueError when
    there are fewer than `k` patients (a fold would be empty) or k < 2.
    """
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    counts: dict[str, int] = {}
    for item in items:
        patient = patient_of(item)
        counts[patient] = counts.get(patient, 0) + 1
    if len(counts) < k:
        raise ValueError(f"{k} folds need at least {k} patients, the frames have {len(counts)}")
    patients = sorted(counts)
    random.Random(seed).shuffle(patients)
    sizes = [0] * k
    fold_of: dict[str, int] = {}
    for patient in patients:
        fold = sizes.index(min(sizes))
        fold_of[patient] = fold
        sizes[fold] += counts[patient]
    return [[item for item in items if fold_of[patient_of(item)] == fold] for fold in range(k)]


def labelled_subset_by_patient(
    items: Sequence[T],
    fraction: float,
    seed: int,
    patient_of: Callable[[T], str] = _default_patient,
) -> tuple[list[T], list[T]]:
    """(labelled, unlabelled): keep the labels of about `fraction` of the items, by patient.

    Used to simulate a partly labelled set (e.g. 10 % of HC18 labelled) for semi-supervised
    training; the seed is mixed so the subset differs from a `split_by_patient` with the same seed.
    """
    unlabelled, labelled = _split_patients(items, fraction, _mixed_seed(seed), patient_of)
    return labelled, unlabelled


def _mixed_seed(seed: int) -> int:
    # A fixed odd multiplier decorrelates the two draws while staying deterministic.
    return (int(seed) * 0x9E3779B1 + 1) % (2**63)
