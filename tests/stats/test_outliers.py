"""Modified z-score outliers (stats/outliers.py), checked by hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vertebrafat.stats.outliers import modified_z, outliers


def test_modified_z_by_hand() -> None:
    # median 3, |x - 3| = 2 1 0 1 97, MAD 1: M = 0.6745 (x - 3)
    assert modified_z([1, 2, 3, 4, 100]).tolist() == pytest.approx(
        [-1.349, -0.6745, 0.0, 0.6745, 65.4265])


def test_mad_zero_uses_the_mean_absolute_deviation() -> None:
    # median 5, MAD 0, MeanAD (0+0+0+0+4)/5 = 0.8: M = 4 / (1.253314 x 0.8)
    assert modified_z([5, 5, 5, 5, 9])[4] == pytest.approx(4 / (1.253314 * 0.8))
    assert modified_z([7, 7, 7]).tolist() == [0.0, 0.0, 0.0]


def test_nan_is_ignored_and_stays_nan() -> None:
    z = modified_z([1, 2, np.nan, 3, 4, 100])
    assert math.isnan(z[2])
    assert z[[0, 1, 3, 4, 5]].tolist() == pytest.approx([-1.349, -0.6745, 0.0, 0.6745, 65.4265])
    assert np.isnan(modified_z([np.nan, np.nan])).all()


@pytest.mark.parametrize(("values", "expected"), [
    pytest.param([30, 32, 31, 29, 33, 75], [0, 0, 0, 0, 0, 1], id="one-high"),
    pytest.param([30, 32, 31, 29, 75], [0, 0, 0, 0, 1], id="five-values"),
    pytest.param([30, 32, 31, 75], [0, 0, 0, 0], id="too-few"),
    pytest.param([30, 31, 32, 33, 34, 35], [0] * 6, id="spread-evenly"),
])
def test_outliers(values: list[float], expected: list[int]) -> None:
    assert outliers(values).astype(int).tolist() == expected


@given(st.lists(st.integers(-1000, 1000), min_size=5, max_size=30),
       st.floats(0.5, 20), st.floats(-100, 100))
def test_outliers_ignore_shift_and_scale(values: list[int], scale: float, shift: float) -> None:
    x = np.asarray(values, dtype=np.float64) / 10
    z = modified_z(x)
    assert np.allclose(modified_z(x * scale + shift), z, atol=1e-6, equal_nan=True)
