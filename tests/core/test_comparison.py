"""The comparison statistics: paired bootstrap by patient, Bland-Altman, the verdict rule."""

from __future__ import annotations

import numpy as np
import pytest
from hc_studio.core.comparison import (
    MIN_FRAMES,
    VERDICT_BETTER,
    VERDICT_SAME,
    VERDICT_TOO_FEW,
    VERDICT_WORSE,
    FrameScores,
    bland_altman,
    compare_scores,
    paired_bootstrap,
)


def scores(dice: list[float], patients: list[str] | None = None, hc=None) -> list[FrameScores]:
    patients = patients or [f"p{i}" for i in range(len(dice))]
    hc = hc or [(None, None)] * len(dice)
    return [
        FrameScores(f"f{i}.png", patient, d, None, pred, ref)
        for i, (d, patient, (pred, ref)) in enumerate(zip(dice, patients, hc, strict=True))
    ]


def test_bootstrap_is_seeded_and_contains_the_mean() -> None:
    diffs = np.random.default_rng(0).normal(0.02, 0.05, 60)
    groups = [str(i) for i in range(60)]
    first, again = paired_bootstrap(diffs, groups, seed=3), paired_bootstrap(diffs, groups, seed=3)
    assert first == again
    assert first["low"] < first["mean"] < first["high"]
    # the interval is about mean +- 1.96 standard errors
    half = 1.96 * diffs.std(ddof=1) / np.sqrt(60)
    assert first["high"] - first["low"] == pytest.approx(2 * half, rel=0.2)


def test_bootstrap_resamples_whole_patients() -> None:
    # Ten patients of six identical frames each: as uncertain as ten frames, not sixty.
    per_patient = np.random.default_rng(1).normal(0.0, 0.05, 10)
    diffs = np.repeat(per_patient, 6)
    by_patient = paired_bootstrap(diffs, [str(i // 6) for i in range(60)])
    by_frame = paired_bootstrap(diffs, [str(i) for i in range(60)])
    assert by_patient["groups"] == 10
    assert (by_patient["high"] - by_patient["low"]) > 2 * (by_frame["high"] - by_frame["low"])


def test_bland_altman_bias_and_limits() -> None:
    reference = np.linspace(150, 300, 40)
    predicted = reference - 5 + np.tile([-2.0, 2.0], 20)
    agreement = bland_altman(predicted, reference)
    sd = np.std(predicted - reference, ddof=1)
    assert agreement["bias"] == pytest.approx(-5.0)
    assert agreement["lower"] == pytest.approx(-5 - 1.96 * sd)
    assert agreement["upper"] == pytest.approx(-5 + 1.96 * sd)
    assert len(agreement["means"]) == len(agreement["differences"]) == 40


def test_verdicts_follow_the_dice_interval() -> None:
    rng = np.random.default_rng(2)
    current = list(rng.uniform(0.8, 0.9, 30))
    better = [d + 0.03 + rng.normal(0, 0.01) for d in current]
    worse = [d - 0.03 + rng.normal(0, 0.01) for d in current]
    noise = [d + rng.normal(0, 0.02) for d in current]
    assert compare_scores(scores(better), scores(current))["verdict"] == VERDICT_BETTER
    assert compare_scores(scores(worse), scores(current))["verdict"] == VERDICT_WORSE
    assert compare_scores(scores(current), scores(current))["verdict"] == VERDICT_SAME
    assert compare_scores(scores(noise), scores(current))["verdict"] == VERDICT_SAME
    few = current[: MIN_FRAMES - 1]
    assert compare_scores(scores(few), scores(few))["verdict"] == VERDICT_TOO_FEW


def test_a_worse_hc_is_worse_even_with_the_same_dice() -> None:
    dice = [0.9] * 30
    reference = list(np.linspace(150, 300, 30))
    current_hc = [(r + 1.0, r) for r in reference]
    candidate_hc = [(r + 4.0 + 0.1 * (i % 3), r) for i, r in enumerate(reference)]
    report = compare_scores(scores(dice, hc=candidate_hc), scores(dice, hc=current_hc), samples=500)
    assert report["verdict"] == VERDICT_WORSE
    assert report["candidate"]["hc_bland_altman"]["bias"] == pytest.approx(4.1, abs=0.05)
    assert report["difference"]["hc_abs_error_mm"]["low"] > 0


def test_frames_losing_more_than_005_dice_are_listed() -> None:
    current = [0.9] * 25
    candidate = [0.95] * 24 + [0.8]
    report = compare_scores(scores(candidate), scores(current))
    assert report["frames_worse"] == ["f24.png"]
    assert report["verdict"] == VERDICT_BETTER  # the average gain does not hide the lost frame
    row = report["per_frame"][24]
    assert row["dice_difference"] == pytest.approx(-0.1)
