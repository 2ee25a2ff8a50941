"""Order statistics as numpy computes them, with less work.

`np.median` partitions its input at the two middle ranks and at the last one (to find NaN) in one
call, and numpy's fast partition takes a single rank only: with several it falls back to a
scalar selection, several times slower on the ~10,000 grey levels of a head's inside. One
single-rank partition finds the same two middle values (the upper one is at its rank, the lower
one is the largest value before it), and their mean, numpy's last step, gives the result, so the
value is the same bit for bit.

`percentile` does the same for numpy's default (linear) percentile: the two ranks it interpolates
between from one single-rank partition, and numpy's interpolation of them. `np.percentile` with
two ranks also goes through `np.unique`, which imports `numpy.ma` (20 ms) on first use.
"""

from __future__ import annotations

import math

import numpy as np


def median(values: np.ndarray) -> float:
    """`float(np.median(values))` of a 1-d array, the same value from a cheaper partition."""
    values = np.asarray(values)
    if values.ndim != 1 or values.size < 2:
        return float(np.median(values))
    half = values.size // 2
    part = np.partition(values, half)
    upper = part[half:]
    if values.dtype.kind in "fc" and np.isnan(upper.max()):
        return math.nan  # np.median's answer when any value is NaN (they sort last)
    middle = part[half : half + 1] if values.size % 2 else np.array([part[:half].max(), part[half]])
    # np.median's last step is the mean of the middle values (np.median itself would check
    # them for masked arrays, importing numpy.ma on first use).
    return float(np.mean(middle))


def percentile(values: np.ndarray, q: float) -> float:
    """`float(np.percentile(values, q))` of a 1-d float array, 0 <= q <= 100, the same value
    from one single-rank partition."""
    values = np.asarray(values)
    if values.ndim != 1 or values.size < 2 or values.dtype.kind != "f" or not 0 <= q <= 100:
        return float(np.percentile(values, q))
    # numpy's "linear" method: virtual index (n - 1) q, interpolated between floor and floor + 1.
    virtual = np.asarray((values.size - 1) * np.true_divide(q, 100))
    below = int(np.floor(virtual))
    above = min(below + 1, values.size - 1)
    part = np.partition(values, above)
    if np.isnan(part[above:].max()):
        return math.nan  # np.percentile's answer when any value is NaN (they sort last)
    low = part[:above].max() if below < above else part[above]
    high = part[above]
    gamma = float(virtual - below)  # a Python float: the arithmetic stays in the values' dtype
    # numpy's _lerp: from the nearer end, in the values' own precision.
    difference = high - low
    if gamma >= 0.5:
        return float(high - difference * (1 - gamma))
    return float(low + difference * gamma)
