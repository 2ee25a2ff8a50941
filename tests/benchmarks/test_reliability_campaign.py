"""A sample of the bad-input campaign (`benchmarks/reliability.py`), one or two cases of each kind,
run through the real `hc-studio` command: each must end as a clear error or as handled."""

from __future__ import annotations

import pytest
from reliability_cases import all_cases
from reliability_harness import run_case

SAMPLE = (
    ("frames", "all-black frame"),
    ("frames", "empty bright ring"),
    ("frames", "PNG claiming 40000x40000"),
    ("frames", "dangling symlink"),
    ("file names", "CSV injection: =HYPERLINK(1).png"),
    ("DICOM", "unknown transfer syntax"),
    ("DICOM", "US region outside the image"),
    ("pixel CSV", "binary garbage"),
    ("pixel CSV", "conflicting duplicate rows"),
    ("models", "probabilities above 1"),
    ("output paths", "--out is the input frame"),
    ("output paths", "--out through a symlink"),
)
CASES = {(case.group, case.name): case for case in all_cases()}


@pytest.mark.slow
@pytest.mark.parametrize(("group", "name"), SAMPLE, ids=[f"{g}: {n}" for g, n in SAMPLE])
def test_bad_input_is_refused_clearly(group: str, name: str, tmp_path) -> None:
    result = run_case(CASES[(group, name)], tmp_path / "case")
    assert result.outcome in ("clear error", "handled"), f"{result.outcome}: {result.why}"
