"""Water-fat separation (waterfat/separate.py and the modules it runs): signals synthesised
from the model, with the answers they were built from."""

from __future__ import annotations

import numpy as np
import pytest

from vertebrafat.core.errors import InputError
from vertebrafat.core.fat_spectrum import LIVER_6PEAK, FatModel
from vertebrafat.waterfat.model import synthesize
from vertebrafat.waterfat.separate import separate

TE_3T = 1.2e-3 + 1e-3 * np.arange(6)  # IDEAL-IQ-like, as the phantom
TE_15T = 1.4e-3 + 2e-3 * np.arange(6)
TE_ISMRM_3 = 2.87e-3 + 3.2e-3 * np.arange(3)  # ISMRM 2012 case 17: three echoes at 1.494 T


@pytest.mark.parametrize(
    ("water", "fat", "r2", "psi", "field", "te"),
    [
        pytest.param(300.0, 700.0, 80.0, 120.0, 3.0, TE_3T, id="3T-70pct"),
        pytest.param(1000.0, 0.0, 30.0, -250.0, 3.0, TE_3T, id="3T-pure-water"),
        pytest.param(0.0, 800.0, 45.0, 60.0, 3.0, TE_3T, id="3T-pure-fat"),
        pytest.param(550.0, 450.0, 100.0, -40.0, 1.5, TE_15T, id="1.5T-marrow"),
        pytest.param(850.0, 150.0, 25.0, 90.0, 1.494, TE_ISMRM_3, id="1.5T-three-echoes"),
        pytest.param(600.0, 400.0, 60.0, 10.0, 3.0, np.array([1.0, 2.0, 3.5, 4.0, 6.0]) * 1e-3,
                     id="uneven-echoes"),
    ],
)
def test_single_voxel_recovers_its_parameters(
    water: float, fat: float, r2: float, psi: float, field: float, te: np.ndarray
) -> None:
    """Noise-free echoes of one voxel (with a phase of 1.1 rad on both species) give back
    |W|, |F|, FF, R2* and the field map they were made from, to float32 arithmetic (the
    work is done in float32/complex64: 0.05 % of the signal, 0.1 Hz, 0.1/s)."""
    phase = np.exp(1.1j)
    s = synthesize([[water * phase]], [[fat * phase]], r2star=r2, field_map_hz=psi, te_s=te,
                   field_strength_t=field)
    out = separate(s, te, field)
    tol = 5e-4 * (water + fat)
    assert abs(out.water[0, 0]) == pytest.approx(water, abs=tol)
    assert abs(out.fat[0, 0]) == pytest.approx(fat, abs=tol)
    assert out.ff_percent[0, 0] == pytest.approx(100 * fat / (water + fat), abs=0.05)
    assert out.r2star_per_s[0, 0] == pytest.approx(r2, abs=0.1)
    assert out.field_map_hz is not None
    assert out.field_map_hz[0, 0] == pytest.approx(psi, abs=0.1)


def _ramp_image(field: float, te: np.ndarray, snr: float, seed: int = 1) -> tuple[
        np.ndarray, np.ndarray, float]:
    """48 x 96 pixels: water (FF 0) on the left, fat (FF 95 %) on the right, a 40 % band
    between; the field rises by 1.5 water-fat shifts from left to right."""
    ff = np.zeros((48, 96))
    ff[:, 48:] = 0.95
    ff[:, 44:52] = 0.4
    span = 1.5 * abs(LIVER_6PEAK.main_peak_hz(field))
    psi = np.linspace(-span / 2, span / 2, 96)[None] * np.ones((48, 1))
    rng = np.random.default_rng(seed)
    s = synthesize(1000 * (1 - ff), 1000 * ff, r2star=40.0, field_map_hz=psi, te_s=te,
                   field_strength_t=field)
    s = s + 1000 / snr * (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape))
    return s, 100 * ff, span


def test_a_field_ramp_that_the_voxelwise_fit_swaps_is_separated() -> None:
    """1.5 T, six echoes, SNR 20: the voxel-independent fit swaps a tenth of the voxels
    (pure water and pure fat explain the echoes almost alike, one fat shift apart); the
    regularised field map swaps none and leaves each tissue's mean FF within 1 pp."""
    s, ff, _ = _ramp_image(1.5, TE_15T, snr=20)
    voxelwise = separate(s, TE_15T, 1.5, method="voxelwise")
    assert np.mean(np.abs(voxelwise.ff_percent - ff) > 30) > 0.05
    for method in ("graphcut", "growing"):
        out = separate(s, TE_15T, 1.5, method=method)  # type: ignore[arg-type]
        err = out.ff_percent - ff
        assert int(np.sum(np.abs(err) > 30)) == 0, method
        for value in (0.0, 40.0, 95.0):
            assert abs(float(err[ff == value].mean())) < 1.0, (method, value)


def test_the_field_map_follows_the_ramp_unwrapped() -> None:
    """3 T: the ramp spans 1.5 water-fat shifts (651 Hz, two thirds of the 1000 Hz echo
    period); the map comes back continuous, on the right period, within 5 Hz of it."""
    s, _, span = _ramp_image(3.0, TE_3T, snr=50)
    out = separate(s, TE_3T, 3.0)
    truth = np.linspace(-span / 2, span / 2, 96)[None] * np.ones((48, 1))
    assert out.field_map_hz is not None
    offset = out.period_hz * np.round(np.median(out.field_map_hz - truth) / out.period_hz)
    assert offset == 0.0
    assert float(np.percentile(np.abs(out.field_map_hz - truth), 99)) < 5.0


def test_flipped_precession_swaps_water_and_fat() -> None:
    """Echoes recorded anticlockwise (the conjugate) of tissue at 20 % and 80 % FF separate
    right with ``precession_clockwise=False``; read as clockwise, water and fat swap: 20 %
    comes out above 70 % and 80 % below 40 % (89 % and 34 %, not 80 and 20: the conjugated
    fat spectrum has its small peaks on the wrong side)."""
    ff = np.where(np.arange(64)[None] < 32, 0.2, 0.8) * np.ones((32, 1))
    rng = np.random.default_rng(3)
    s = synthesize(1000 * (1 - ff), 1000 * ff, r2star=40.0, field_map_hz=50.0, te_s=TE_3T,
                   field_strength_t=3.0, precession_clockwise=False)
    s = s + 10 * (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape))
    right = separate(s, TE_3T, 3.0, precession_clockwise=False)
    wrong = separate(s, TE_3T, 3.0, precession_clockwise=True)
    for value in (0.2, 0.8):
        assert float(right.ff_percent[ff == value].mean()) == pytest.approx(100 * value, abs=0.5)
        swapped = float(wrong.ff_percent[ff == value].mean())
        assert swapped > 70.0 if value < 0.5 else swapped < 40.0


@pytest.mark.parametrize(
    ("ff", "magnitude_ff"),
    [pytest.param(f, f, id=f"{f:g}pct") for f in (0.0, 10.0, 30.0, 50.0, 70.0, 90.0, 100.0)],
)
def test_magnitude_mode_recovers_ff_within_2pp_at_high_snr(ff: float, magnitude_ff: float) -> None:
    """SNR 200 at 3 T, six echoes, R2* 50/s: every voxel of 50 within 2 pp, from the echo
    magnitudes alone (the multi-peak spectrum tells FF from 100 - FF)."""
    rng = np.random.default_rng(7)
    s = synthesize(np.full((1, 50), 1000 * (1 - ff / 100)), np.full((1, 50), 10 * ff),
                   r2star=50.0, field_map_hz=30.0, te_s=TE_3T, field_strength_t=3.0)
    s = s + 5.0 * (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape))
    out = separate(np.abs(s), TE_3T, 3.0, mode="magnitude")
    assert out.field_map_hz is None
    assert float(np.max(np.abs(out.ff_percent - magnitude_ff))) < 2.0


def test_fat_model_is_configurable() -> None:
    """A single-peak fat model separates echoes made with a single peak; the default 6-peak
    model does not fit them as well (FF off by more than 1 pp)."""
    one_peak = FatModel(ppm=(-3.4,), amplitudes=(1.0,), name="single peak")
    s = synthesize([[600.0]], [[400.0]], r2star=30.0, field_map_hz=20.0, te_s=TE_3T,
                   field_strength_t=3.0, fat_model=one_peak)
    assert separate(s, TE_3T, 3.0, fat_model=one_peak).ff_percent[0, 0] == pytest.approx(
        40.0, abs=0.01)
    assert abs(float(separate(s, TE_3T, 3.0).ff_percent[0, 0]) - 40.0) > 1.0


@pytest.mark.parametrize(
    ("echoes", "te", "field", "kwargs", "message"),
    [
        pytest.param(np.ones((2, 4, 4), complex), [1e-3, 2e-3], 3.0, {}, "at least 3 echoes",
                     id="two-echoes"),
        pytest.param(np.ones((3, 4, 4), complex), [1.0, 2.0, 3.0], 3.0, {}, "seconds",
                     id="milliseconds"),
        pytest.param(np.ones((3, 4, 4), complex), [3e-3, 2e-3, 1e-3], 3.0, {}, "increasing",
                     id="decreasing"),
        pytest.param(np.ones((4, 4, 4), complex), [1e-3, 2e-3, 3e-3], 3.0, {}, "do not fit",
                     id="count"),
        pytest.param(np.ones((3, 4, 4)), [1e-3, 2e-3, 3e-3], 3.0, {}, "complex",
                     id="real-echoes"),
        pytest.param(np.ones((3, 4, 4), complex), [1e-3, 2e-3, 3e-3], 0.0, {}, "positive",
                     id="no-field"),
        pytest.param(np.full((3, 4, 4), np.nan, complex), [1e-3, 2e-3, 3e-3], 3.0, {},
                     "48 echo values are NaN", id="nan"),
        pytest.param(np.ones((3, 4, 4), complex), [1e-3, 2e-3, 3e-3], 3.0,
                     {"method": "magic"}, "method", id="method"),
    ],
)
def test_bad_input_is_one_clear_error(
    echoes: np.ndarray, te: list[float], field: float, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        separate(echoes, te, field, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("te", "unwrapped", "largest_error"),
    [pytest.param(TE_3T, True, 0.03, id="even"),
     pytest.param(np.array([1.2, 2.2, 3.4, 4.4, 5.6, 6.6]) * 1e-3, False, 0.08, id="uneven")],
)
def test_the_outputs_resynthesise_the_echoes_where_the_map_is_unwrapped(
    te: np.ndarray, unwrapped: bool, largest_error: float
) -> None:
    """3 T, a field from -900 to +900 Hz (almost two 1000 Hz echo periods), SNR 200; echoes
    synthesised from water, fat, R2* and the field map must give back the input. Even echoes:
    the unwrapped map moves voxels by whole periods, which explains the echoes alike only with
    water and fat turned by exp(-2 pi i k TE1 / dTE) (1.2 turns per period here): largest
    error under 3 % of the signal, the noise's scale (unturned: 118 %). Uneven echoes have no
    such period: the map stays as fitted, within one period of 1 / min dTE; beyond +-500 Hz
    only a near alias fits (910 Hz away), off by 6-7 % of the signal (unwrapped by whole
    periods as even echoes are: 160 %)."""
    ff = np.zeros((32, 64))
    ff[:, 32:] = 0.3
    psi = np.linspace(-900.0, 900.0, 64)[None] * np.ones((32, 1))
    s = synthesize(1000 * (1 - ff) * np.exp(0.4j), 1000 * ff * np.exp(0.4j), r2star=40.0,
                   field_map_hz=psi, te_s=te, field_strength_t=3.0)
    rng = np.random.default_rng(3)
    s = s + 5.0 * (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape))
    out = separate(s, te, 3.0)
    assert out.field_map_hz is not None
    assert (float(np.ptp(out.field_map_hz)) > out.period_hz) is unwrapped
    again = synthesize(out.water, out.fat, r2star=out.r2star_per_s,
                       field_map_hz=out.field_map_hz, te_s=te, field_strength_t=3.0)
    err = np.abs(again - s).max(axis=0) / np.abs(s).max(axis=0)
    assert float(err.max()) < largest_error
