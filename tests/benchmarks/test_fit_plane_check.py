"""benchmarks/fit_plane_check.py: the logistic fit, the made-up negatives and the table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fit_plane_check as fitting
import numpy as np
import pytest
from hc_studio.core.plane_check import FEATURES

SCRIPT = Path(fitting.__file__)


def test_help_says_what_it_reproduces() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "Reproduces" in result.stdout


def test_logistic_fit_separates_two_classes() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(1.0, 0.5, (200, 2)), rng.normal(-1.0, 0.5, (300, 2))])
    y = np.r_[np.ones(200), np.zeros(300)]
    weights, bias = fitting.fit_logistic(x, y)
    predicted = (x @ weights + bias) > 0
    assert (predicted == (y == 1)).mean() > 0.97
    assert weights[0] > 0 and weights[1] > 0


def test_fit_check_threshold_keeps_fit_positives(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    samples = []
    for index in range(300):
        positive = index % 2 == 0
        centre = 1.0 if positive else -1.0
        features = {name: float(rng.normal(centre, 1.0)) for name in FEATURES}
        samples.append(fitting.Sample("k", "fit", positive, str(index), features))
    check = fitting.fit_check(samples, "m")
    positives = [s for s in samples if s.positive]
    refused = sum(fitting.refused(s, check) for s in positives)
    assert refused <= max(1, round(fitting.FIT_POSITIVE_REFUSAL * len(positives)) + 1)
    assert check.model == "m" and check.threshold <= 0.5


@pytest.mark.parametrize("kind", ["head-cut", "crop", "shuffled", "inverted"])
def test_hc18_negatives_remove_or_spoil_the_head(kind: str) -> None:
    rng = np.random.default_rng(2)
    rows, cols = np.mgrid[:270, :400]
    ring = np.abs(np.hypot((cols - 300) / 60.0, (rows - 135) / 45.0) - 1.0) < 0.02
    pixels = np.where(np.hypot((cols - 300) / 60.0, (rows - 135) / 45.0) < 1, 0.8, 0.2)
    made = fitting.hc18_negative(kind, pixels.astype(np.float32), ring, rng)
    assert made.ndim == 2 and made.size > 96 * 96
    if kind in ("head-cut", "crop"):
        assert made.mean() < 0.3  # the bright head is gone
    if kind == "inverted":
        np.testing.assert_allclose(made, 1.0 - pixels)


def test_report_counts_refusals_per_kind_and_side() -> None:
    check = fitting.fit_check(
        [
            fitting.Sample("hc18", "fit", True, "a", dict.fromkeys(FEATURES, 1.0)),
            fitting.Sample("hc18", "fit", True, "b", dict.fromkeys(FEATURES, 1.1)),
            fitting.Sample("noise", "fit", False, "c", dict.fromkeys(FEATURES, -1.0)),
            fitting.Sample("noise", "fit", False, "d", dict.fromkeys(FEATURES, -1.1)),
        ],
        "m",
    )
    samples = [
        fitting.Sample("hc18", "report", True, "e", dict.fromkeys(FEATURES, 1.0)),
        fitting.Sample("blank", "report", False, "f", None),  # no ellipse: refused
        fitting.Sample("noise", "report", False, "g", dict.fromkeys(FEATURES, 1.0), ["blank"]),
    ]
    table = fitting.report(samples, check)
    assert table == {
        "hc18": {"report": [0, 1]},
        "blank": {"report": [1, 1]},
        "noise": {"report": [1, 1]},
    }
    assert "| blank | - | 1 / 1 (100.0 %) |" in fitting.markdown(table)


def test_generated_natural_images_are_the_same_every_run() -> None:
    """binary_blobs draws a new image per call unless seeded; the fit must not change run to run."""
    first = fitting.natural_frames("binary_blobs", np.random.default_rng(0))
    again = fitting.natural_frames("binary_blobs", np.random.default_rng(0))
    assert len(first) == len(again) == 4
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
