"""Gestational age from HC (Hadlock 1984, INTERGROWTH-21st) and HC z-scores / centiles."""

from __future__ import annotations

import math

import pytest
from hc_studio.core.gestational_age import (
    GestationalAge,
    ga_hadlock,
    ga_intergrowth,
    hadlock_weeks,
    hc_centile,
    hc_z_score,
    intergrowth_days,
    intergrowth_hc_mean_sd,
)

# INTERGROWTH-21st Fetal Growth Standards, head circumference centiles (mm) by exact week
# (published table "GROW_Fetal-ct_hc_Table", INTERGROWTH-21st / Papageorghiou et al., Lancet 2014).
INTERGROWTH_HC_TABLE = {
    # week: (3rd, 50th, 97th)
    14: (None, 97.9, 108.4),
    20: (158.5, 172.5, 186.5),
    30: (261.0, 278.4, 295.8),
    40: (309.6, 333.9, 358.3),
}
Z_97 = 1.880794


@pytest.mark.parametrize("week", sorted(INTERGROWTH_HC_TABLE))
def test_intergrowth_standard_reproduces_the_published_centile_table(week: int) -> None:
    p3, p50, p97 = INTERGROWTH_HC_TABLE[week]
    mean, sd = intergrowth_hc_mean_sd(week)
    assert mean == pytest.approx(p50, abs=0.06)
    assert mean + Z_97 * sd == pytest.approx(p97, abs=0.06)
    if p3 is not None:
        assert mean - Z_97 * sd == pytest.approx(p3, abs=0.06)


def test_centile_of_published_centile_values() -> None:
    assert hc_centile(172.5, 20.0)[0] == pytest.approx(50.0, abs=0.3)
    assert hc_centile(295.8, 30.0)[0] == pytest.approx(97.0, abs=0.1)
    assert hc_centile(158.5, 20.0)[0] == pytest.approx(3.0, abs=0.1)
    z, note = hc_z_score(278.4, 30.0)
    assert z == pytest.approx(0.0, abs=0.01)
    assert "INTERGROWTH" in note


@pytest.mark.parametrize("ga_weeks", [13.9, 40.1])
def test_z_score_outside_14_to_40_weeks_gives_none_with_a_reason(ga_weeks: float) -> None:
    z, note = hc_z_score(200.0, ga_weeks)
    assert z is None
    assert "14-40 weeks" in note
    centile, note = hc_centile(200.0, ga_weeks)
    assert centile is None and "outside" in note


@pytest.mark.parametrize("bad", [float("nan"), -5.0, 0.0, "abc", None])
def test_bad_inputs_give_none_with_a_reason(bad) -> None:
    assert hc_z_score(bad, 20.0)[0] is None
    assert hc_z_score(200.0, bad)[0] is None
    for estimate in (ga_hadlock(bad), ga_intergrowth(bad)):
        assert estimate.weeks is None
        assert estimate.note


def test_intergrowth_ga_equation_matches_the_papers_worked_example() -> None:
    # Papageorghiou et al. 2016: HC 250 mm -> 189.8 days.
    assert intergrowth_days(250.0) == pytest.approx(189.8, abs=0.05)


def test_intergrowth_ga_dates_the_standard_median_hc_to_its_week() -> None:
    # Two independent INTERGROWTH-21st equations agree: median HC at week w dates to ~w.
    for week in (14, 20, 24):
        estimate = ga_intergrowth(INTERGROWTH_HC_TABLE.get(week, (None, 219.1))[1])
        assert estimate.weeks == pytest.approx(week, abs=0.15)
        assert estimate.method.startswith("INTERGROWTH-21st")


@pytest.mark.parametrize("hc_mm", [90.0, 250.0, 300.0])
def test_intergrowth_ga_outside_its_dating_window_gives_none(hc_mm: float) -> None:
    estimate = ga_intergrowth(hc_mm)
    assert estimate.weeks is None
    assert "14+0 to 25+6 weeks" in estimate.note


def test_hadlock_equation_values() -> None:
    # GA = 8.96 + 0.540 HC + 0.0003 HC^3 (HC in cm); arithmetic of the published equation.
    assert hadlock_weeks(100.0) == pytest.approx(8.96 + 5.40 + 0.30)
    assert hadlock_weeks(200.0) == pytest.approx(22.16)
    assert hadlock_weeks(300.0) == pytest.approx(33.26)
    estimate = ga_hadlock(200.0)
    assert estimate == GestationalAge(pytest.approx(22.16), "Hadlock 1984", estimate.note)


@pytest.mark.parametrize("hc_mm", [67.9, 360.1])
def test_hadlock_outside_its_range_gives_none(hc_mm: float) -> None:
    estimate = ga_hadlock(hc_mm)
    assert estimate.weeks is None
    assert "68-360 mm" in estimate.note


def test_hadlock_range_ends_are_inside() -> None:
    assert ga_hadlock(68.0).weeks == pytest.approx(hadlock_weeks(68.0))
    assert math.isfinite(ga_hadlock(360.0).weeks)
