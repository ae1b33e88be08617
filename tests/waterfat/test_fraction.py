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
        pytest.param(1.0, 1.0j, 50.0, id="fat-turned-90-degrees"),  # Re(i (1 - i)) / 2
        pytest.param(0.0, 0.0, 0.0, id="empty-voxel"),
        pytest.param(1.0, -0.1, -100 * 0.09 / 0.81, id="noise-against-water"),
        pytest.param(1.0, -0.9, -100 * 0.09 / 0.9025, id="noise-turned-both"),
    ],
)
def test_ff_from_complex_exact(w: complex, f: complex, expected: float) -> None:
    """FF = Re(F conj(S)) / |S|^2 with S = W + F: (3, 1) 25 %; (i, 3i) 75 %; (1, i): S = 1 + i,
    Re(i (1 - i)) / 2 = 50 %; (1, -0.1): -0.09 / 0.81 = -11.1 %; water and fat turned so far
    apart that |S| < (|W| + |F|) / 2, (1, -0.9): the denominator is (1.9 / 2)^2, -9.97 %."""
    from vertebrafat.waterfat.fraction import ff_from_complex

    got = float(ff_from_complex(np.array([w]), np.array([f]))[0])
    assert got == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("field_t", [pytest.param(3.0, id="3T"), pytest.param(1.5, id="1.5T")])
def test_separated_ff_is_unbiased_at_low_snr(field_t: float) -> None:
    """6 echoes, signal 0.3, noise SD 0.05 per part (6 SDs), R2* 100/s, bands of 40 x 128
    voxels at FF 0, 20, 40, 60, 80 and 100 %: the mean FF of the separation is within 1 pp of
    the truth in every band. Magnitude discrimination (Liu 2007) on the same water and fat is
    unbiased only near 0 and 100 %; at 20 % its |W| carries the Rician bias, more than 0.5 pp
    low."""
    from vertebrafat.waterfat.model import synthesize
    from vertebrafat.waterfat.separate import separate

    te = (1.2e-3 if field_t == 3.0 else 1.4e-3) + (1e-3 * 3 / field_t) * np.arange(6)
    bands = np.array([0, 20, 40, 60, 80, 100])
    eta = np.repeat(bands / 100, 40)[:, None] * np.ones((1, 128))
    clean = synthesize(0.3 * (1 - eta), 0.3 * eta, r2star=100.0, field_map_hz=30.0, te_s=te,
                       field_strength_t=field_t)
    rng = np.random.default_rng(1)
    noisy = clean * np.exp(0.7j) + 0.05 * (rng.normal(size=clean.shape)
                                           + 1j * rng.normal(size=clean.shape))
    out = separate(noisy, te, field_t)
    got = [float(out.ff_percent[eta == b / 100].mean()) for b in bands]
    np.testing.assert_allclose(got, bands, atol=1.0)
    aw, af, total = np.abs(out.water), np.abs(out.fat), np.abs(out.water + out.fat)
    liu = 100 * np.where(af >= aw, af / total, 1 - aw / total)
    assert float(liu[eta == 0.2].mean()) < 20 - 0.5
