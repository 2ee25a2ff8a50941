"""Gestational age (GA) from head circumference, and HC z-scores / centiles for GA.

Every estimate is returned only inside the range its equation was published for; outside it the
value is None and the note says why. Sources (equations checked against secondary
implementations and published tables; the primary papers themselves were not available here):

* Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted analysis of
  multiple fetal growth parameters. Radiology 1984;152:497-501.
  GA (weeks) = 8.96 + 0.540 * HC + 0.0003 * HC^3, HC in cm. Valid range used here: HC 6.8-36.0
  cm, the range over which ultrasound vendors tabulate this equation ("GA by HC - Hadlock 1984").
  No primary table was available to test against: the tests check the equation's own values.
* Papageorghiou AT, Kemp B, Stones W, et al. Ultrasound-based gestational-age estimation in late
  pregnancy. Ultrasound Obstet Gynecol 2016;48:719-726 (INTERGROWTH-21st).
  GA (days) = exp(0.05970 * ln(HC)^2 + 0.000000006409 * HC^3 + 3.3258), HC in mm; its published
  worked example is HC 250 mm -> 189.8 days. It is meant for scans at 14+0 to 25+6 weeks (98-181
  days) when no first-trimester crown-rump length is available, so only estimates in that window
  are returned (HC about 97.7-237.6 mm).
* Papageorghiou AT, Ohuma EO, Altman DG, et al. International standards for fetal growth based
  on serial ultrasound measurements: the Fetal Growth Longitudinal Study of the INTERGROWTH-21st
  Project. Lancet 2014;384:869-879. HC-for-GA, GA in exact weeks (14-40):
  mean = -28.2849 + 1.69267 GA^2 - 0.397485 GA^2 ln(GA);
  SD = 1.98735 + 0.0136772 GA^3 - 0.00726264 GA^3 ln(GA) + 0.000976253 GA^3 ln(GA)^2 (mm).
  These reproduce the published INTERGROWTH-21st HC centile table to its 0.1 mm rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HADLOCK_METHOD = "Hadlock 1984"
HADLOCK_HC_RANGE_MM = (68.0, 360.0)
INTERGROWTH_GA_METHOD = "INTERGROWTH-21st (Papageorghiou 2016)"
INTERGROWTH_GA_WINDOW_DAYS = (98.0, 181.0)
INTERGROWTH_HC_FOR_GA = "INTERGROWTH-21st HC-for-GA (Papageorghiou 2014)"
INTERGROWTH_STANDARD_WEEKS = (14.0, 40.0)


@dataclass(frozen=True)
class GestationalAge:
    """GA in weeks (None when no estimate can be given), method, note (source, or why none)."""

    weeks: float | None
    method: str
    note: str


def _bad_number(value: float, name: str) -> str | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return f"{name} is not a number: {value!r}"
    if not math.isfinite(value) or value <= 0:
        return f"{name} must be a positive number, got {value}"
    return None


def hadlock_weeks(hc_mm: float) -> float:
    """The Hadlock 1984 equation itself, without range checks (HC in mm, result in weeks)."""
    hc_cm = hc_mm / 10.0
    return 8.96 + 0.540 * hc_cm + 0.0003 * hc_cm**3


def intergrowth_days(hc_mm: float) -> float:
    """The INTERGROWTH-21st GA-from-HC equation itself, without range checks (mm -> days)."""
    return math.exp(0.05970 * math.log(hc_mm) ** 2 + 0.000000006409 * hc_mm**3 + 3.3258)


def ga_hadlock(hc_mm: float) -> GestationalAge:
    """GA by Hadlock 1984 from HC in mm; None outside HC 68-360 mm."""
    problem = _bad_number(hc_mm, "head circumference")
    if problem:
        return GestationalAge(None, HADLOCK_METHOD, problem)
    low, high = HADLOCK_HC_RANGE_MM
    if not low <= hc_mm <= high:
        return GestationalAge(
            None,
            HADLOCK_METHOD,
            f"HC {hc_mm:.1f} mm is outside the equation's range {low:.0f}-{high:.0f} mm",
        )
    return GestationalAge(hadlock_weeks(hc_mm), HADLOCK_METHOD, "Radiology 1984;152:497-501")


def ga_intergrowth(hc_mm: float) -> GestationalAge:
    """GA by the INTERGROWTH-21st HC equation; None when it falls outside 14+0 to 25+6 weeks."""
    problem = _bad_number(hc_mm, "head circumference")
    if problem:
        return GestationalAge(None, INTERGROWTH_GA_METHOD, problem)
    days = intergrowth_days(hc_mm)
    low, high = INTERGROWTH_GA_WINDOW_DAYS
    if not low <= days <= high:
        return GestationalAge(
            None,
            INTERGROWTH_GA_METHOD,
            f"HC {hc_mm:.1f} mm gives {days / 7:.1f} weeks, outside the equation's dating window "
            "14+0 to 25+6 weeks",
        )
    return GestationalAge(
        days / 7, INTERGROWTH_GA_METHOD, "Ultrasound Obstet Gynecol 2016;48:719-726"
    )


def intergrowth_hc_mean_sd(ga_weeks: float) -> tuple[float, float]:
    """INTERGROWTH-21st HC-for-GA mean and SD in mm at GA in exact weeks (no range check)."""
    log_ga = math.log(ga_weeks)
    mean = -28.2849 + 1.69267 * ga_weeks**2 - 0.397485 * ga_weeks**2 * log_ga
    sd = (
        1.98735
        + 0.0136772 * ga_weeks**3
        - 0.00726264 * ga_weeks**3 * log_ga
        + 0.000976253 * ga_weeks**3 * log_ga**2
    )
    return mean, sd


def hc_z_score(hc_mm: float, ga_weeks: float) -> tuple[float | None, str]:
    """(z, note): HC z-score for GA by the INTERGROWTH-21st standard; None outside 14-40 weeks."""
    problem = _bad_number(hc_mm, "head circumference") or _bad_number(ga_weeks, "gestational age")
    if problem:
        return None, problem
    low, high = INTERGROWTH_STANDARD_WEEKS
    if not low <= ga_weeks <= high:
        return None, f"GA {ga_weeks:.1f} weeks is outside the standard's range 14-40 weeks"
    mean, sd = intergrowth_hc_mean_sd(ga_weeks)
    return (hc_mm - mean) / sd, INTERGROWTH_HC_FOR_GA


def hc_centile(hc_mm: float, ga_weeks: float) -> tuple[float | None, str]:
    """(centile 0-100, note): HC centile for GA by the INTERGROWTH-21st standard (normal model)."""
    z, note = hc_z_score(hc_mm, ga_weeks)
    if z is None:
        return None, note
    return 50.0 * (1.0 + math.erf(z / math.sqrt(2.0))), note
