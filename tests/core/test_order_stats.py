"""The median and percentile from one single-rank partition are numpy's, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hc_studio.core.order_stats import median, percentile


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 1000, 10001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_the_median_is_numpys(size, dtype) -> None:
    rng = np.random.default_rng(size)
    values = (rng.random(size) * 1000).astype(dtype)
    repeated = np.repeat(values[: max(1, size // 3)], 3)  # ties at the middle ranks
    for array in (values, repeated, np.sort(values)):
        assert median(array) == float(np.median(array))


def test_a_nan_gives_nan_like_numpy() -> None:
    values = np.random.default_rng(1).random(101, dtype=np.float32)
    values[17] = np.nan
    assert math.isnan(median(values)) and math.isnan(float(np.median(values)))


@pytest.mark.parametrize("size", [2, 3, 10, 11, 999, 4000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("q", [0, 10, 50, 90, 95, 99.9, 100])
def test_the_percentile_is_numpys(size, dtype, q) -> None:
    rng = np.random.default_rng(size)
    values = rng.random(size).astype(dtype)
    repeated = np.repeat(values[: max(1, size // 3)], 3)  # ties at the interpolated ranks
    for array in (values, repeated, np.sort(values)[::-1].copy()):
        assert percentile(array, q) == float(np.percentile(array, q))


def test_a_nan_gives_a_nan_percentile_like_numpy() -> None:
    values = np.random.default_rng(2).random(101, dtype=np.float32)
    values[3] = np.nan
    assert math.isnan(percentile(values, 90)) and math.isnan(float(np.percentile(values, 90)))
