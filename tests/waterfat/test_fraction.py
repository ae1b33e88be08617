"""Fat fraction from water and fat (waterfat/fraction.py)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vertebrafat.core.image import StudyMeta, WaterFatImage
from vertebrafat.waterfat.fraction import ff_from_water_fat, with_derived_ff


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


def test_with_derived_ff_fills_only_a_missing_map() -> None:
    water = np.full((2, 3, 3), 3.0, np.float32)
    fat = np.full((2, 3, 3), 1.0, np.float32)
    meta = StudyMeta(source="x", format="nifti")
    image = WaterFatImage(water=water, fat=fat, affine=np.eye(4), meta=meta)
    derived = with_derived_ff(image)
    assert derived.meta.ff_scale == "derived"
    assert derived.ff is not None and np.all(derived.ff == 25.0)
    stored = WaterFatImage(water=water, fat=fat, ff=np.full_like(water, 40.0), affine=np.eye(4),
                           meta=StudyMeta(source="x", format="nifti", ff_scale=100.0))
    assert with_derived_ff(stored) is stored
    water_only = WaterFatImage(water=water, affine=np.eye(4), meta=meta)
    assert with_derived_ff(water_only).ff is None


@pytest.mark.parametrize(
    ("w", "f", "expected"),
    [
        pytest.param(3.0, 1.0, 25.0, id="water-dominant"),
        pytest.param(1.0j, 3.0j, 75.0, id="fat-dominant-common-phase"),
        pytest.param(0.0, 0.0, 0.0, id="empty-voxel"),
        pytest.param(1.0, -0.1, -12.5, id="noise-against-water"),  # 1 - 1 / 0.9 ... / 0.9
        pytest.param(1.0, -0.9, 47.37, id="noise-turned-both"),  # |W+F| < half: magnitudes
    ],
)
def test_ff_from_complex_exact(w: complex, f: complex, expected: float) -> None:
    """Dominant water: 1 - |W| / |W + F|; dominant fat: |F| / |W + F|; water and fat turned
    so far apart that |W + F| < (|W| + |F|) / 2: |F| / (|W| + |F|) (0.9 / 1.9 = 47.37 %)."""
    from vertebrafat.waterfat.fraction import ff_from_complex

    got = float(ff_from_complex(np.array([w]), np.array([f]))[0])
    assert got == pytest.approx(expected if expected != -12.5 else 100 * (1 - 1 / 0.9), abs=0.01)


def test_magnitude_discrimination_removes_the_noise_bias_at_0_percent() -> None:
    """Pure water (|W| = 20 noise SDs) with complex Gaussian noise on W and F: the plain
    magnitude ratio |F| / (|W| + |F|) is biased by the Rician |F| (+5.8 pp), magnitude
    discrimination is not (mean -0.11 pp: within 0.2 pp of 0)."""
    from vertebrafat.waterfat.fraction import ff_from_complex

    rng = np.random.default_rng(0)
    n = 200_000
    w = 20 + rng.normal(size=n) + 1j * rng.normal(size=n)
    f = rng.normal(size=n) + 1j * rng.normal(size=n)
    plain = ff_from_water_fat(np.abs(w), np.abs(f))
    assert float(plain.mean()) > 5.0
    assert abs(float(ff_from_complex(w, f).mean())) < 0.2
