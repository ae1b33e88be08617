"""Fat fraction from water and fat, and FF scale detection (waterfat.py)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vertebrafat.core.errors import InputError
from vertebrafat.waterfat.fraction import detect_ff_scale, ff_from_water_fat, ff_to_percent


@pytest.mark.parametrize(
    ("w", "f", "expected"),
    [
        pytest.param(3.0, 1.0, 25.0, id="water-dominant"),
        pytest.param(1.0, 3.0, 75.0, id="fat-dominant"),
        pytest.param(2.0, 2.0, 50.0, id="equal"),
        pytest.param(0.0, 0.0, 0.0, id="empty-voxel"),
        pytest.param(-3.0, 1.0, 25.0, id="magnitude"),
    ],
)
def test_ff_from_water_fat_exact(w: float, f: float, expected: float) -> None:
    assert ff_from_water_fat(np.array([w]), np.array([f]))[0] == pytest.approx(expected)


@given(st.floats(0.01, 1e4), st.floats(0.01, 1e4))
def test_ff_in_range_and_complementary(w: float, f: float) -> None:
    a = float(ff_from_water_fat(np.array([w]), np.array([f]))[0])
    b = float(ff_from_water_fat(np.array([f]), np.array([w]))[0])
    assert 0.0 <= a <= 100.0
    assert a + b == pytest.approx(100.0, abs=1e-3)


@pytest.mark.parametrize(
    ("top", "scale"),
    [pytest.param(0.95, 1.0, id="fraction"), pytest.param(92.0, 100.0, id="percent"),
     pytest.param(930.0, 1000.0, id="ge-x10")],
)
def test_detect_scale(top: float, scale: float) -> None:
    values = np.linspace(0.0, top, 10001)
    assert detect_ff_scale(values, source="x") == scale
    assert ff_to_percent(values, scale, source="x").max() == pytest.approx(top * 100 / scale)


@pytest.mark.parametrize(
    ("top", "hint", "message"),
    [
        pytest.param(8.0, None, "ambiguous", id="between-fraction-and-percent"),
        pytest.param(170.0, None, "ambiguous", id="between-percent-and-permille"),
        pytest.param(90.0, 1000.0, "tags say full scale 1000", id="tag-disagrees"),
        pytest.param(0.0, None, "empty", id="all-zero"),
    ],
)
def test_detect_scale_refuses(top: float, hint: float | None, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        detect_ff_scale(np.linspace(0, top, 1001), source="ff.nii.gz", hint=hint)
    assert "ff.nii.gz" in str(info.value)
    assert "--ff-scale" in str(info.value)
