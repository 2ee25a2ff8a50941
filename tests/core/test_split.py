"""Patient ids and patient-level splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hc_studio.core.split import (
    folds_by_patient,
    labelled_subset_by_patient,
    patient_id,
    read_patients_csv,
    split_by_patient,
)
from hypothesis import given, settings
from hypothesis import strategies as st


@dataclass(frozen=True)
class Item:
    name: str
    patient: str


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("010_HC.png", "010"),
        ("010_2HC.png", "010"),
        ("010_3HC_Annotation.png", "010"),
        ("scan_2021_01.png", "scan_2021_01"),
        ("IM_0001", "IM_0001"),
    ],
)
def test_patient_id_without_mapping(filename: str, expected: str) -> None:
    assert patient_id(filename) == expected


def test_patient_id_mapping_by_name_then_stem() -> None:
    mapping = {"a.png": "P1", "b": "P2", "010_HC.png": "P3"}
    assert patient_id("a.png", mapping) == "P1"
    assert patient_id(Path("x/b.dcm"), mapping) == "P2"
    assert patient_id("010_HC.png", mapping) == "P3"
    assert patient_id("c.png", mapping) == "c"


def test_read_patients_csv(tmp_path: Path) -> None:
    path = tmp_path / "patients.csv"
    path.write_text("filename,patient\na.png, P1\nb.png,P2\n\n")
    assert read_patients_csv(path) == {"a.png": "P1", "b.png": "P2"}
    path.write_text("filename,patient\na.png,\n")
    with pytest.raises(ValueError, match=r"patients\.csv:2"):
        read_patients_csv(path)


items_strategy = st.lists(st.integers(0, 30), min_size=0, max_size=40).map(
    # One item per drawn patient number: repeated numbers are frames of one patient.
    lambda patients: [Item(f"{p:03d}_{k}HC.png", f"{p:03d}") for k, p in enumerate(patients)]
)


@settings(max_examples=150, deadline=None)
@given(items=items_strategy, fraction=st.floats(0.0, 1.0), seed=st.integers(0, 2**32))
def test_split_invariants(items: list[Item], fraction: float, seed: int) -> None:
    for split in (split_by_patient, labelled_subset_by_patient):
        first, second = split(items, fraction, seed)
        # Every item lands on exactly one side, each side in input order.
        assert sorted(first + second, key=items.index) == items
        assert first == [i for i in items if i in first]
        # No patient on both sides.
        assert not {i.patient for i in first} & {i.patient for i in second}
        # Deterministic for a seed.
        assert split(items, fraction, seed) == (first, second)
        n_patients = len({i.patient for i in items})
        if n_patients >= 2 and 0 < fraction < 1:
            assert first and second


@settings(max_examples=50, deadline=None)
@given(fraction=st.floats(0.05, 0.95), seed=st.integers(0, 1000))
def test_split_size_follows_the_fraction(fraction: float, seed: int) -> None:
    items = [Item(f"{p:03d}_HC.png", f"{p:03d}") for p in range(200)]
    train, val = split_by_patient(items, fraction, seed)
    assert abs(len(val) - fraction * len(items)) <= 1
    labelled, unlabelled = labelled_subset_by_patient(items, fraction, seed)
    assert abs(len(labelled) - fraction * len(items)) <= 1


def test_different_seeds_give_different_splits() -> None:
    items = [Item(f"{p:03d}_HC.png", f"{p:03d}") for p in range(50)]
    assert split_by_patient(items, 0.2, 1) != split_by_patient(items, 0.2, 2)


def test_extreme_fractions_and_bad_input() -> None:
    items = [Item("1_HC.png", "1"), Item("2_HC.png", "2")]
    assert split_by_patient(items, 0.0, 0) == (items, [])
    assert split_by_patient(items, 1.0, 0) == ([], items)
    assert split_by_patient([], 0.5, 0) == ([], [])
    with pytest.raises(ValueError):
        split_by_patient(items, 1.5, 0)


def test_custom_patient_key() -> None:
    names = ["a1.png", "a2.png", "b1.png"]
    train, val = split_by_patient(names, 0.5, 3, patient_of=lambda name: name[0])
    assert {n[0] for n in train}.isdisjoint({n[0] for n in val})


def test_folds_hold_every_item_once_and_never_split_a_patient() -> None:
    items = [Item(f"f{i}", f"p{i // 3}") for i in range(20)]  # 7 patients, the last with two
    folds = folds_by_patient(items, 3, seed=4)
    assert sorted(i.name for fold in folds for i in fold) == sorted(i.name for i in items)
    patients = [{i.patient for i in fold} for fold in folds]
    assert all(not (a & b) for n, a in enumerate(patients) for b in patients[n + 1 :])
    assert max(map(len, folds)) - min(map(len, folds)) <= 3  # one patient at most
    assert folds == folds_by_patient(items, 3, seed=4)
    assert folds != folds_by_patient(items, 3, seed=5)


def test_folds_need_as_many_patients_as_folds() -> None:
    items = [Item(f"f{i}", "p0" if i < 5 else "p1") for i in range(10)]
    with pytest.raises(ValueError, match="3 folds need at least 3 patients"):
        folds_by_patient(items, 3, seed=0)
    with pytest.raises(ValueError, match="at least 2 folds"):
        folds_by_patient(items, 1, seed=0)
