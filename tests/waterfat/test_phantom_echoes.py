"""The phantom's echoes with a B0 ramp (phantom option b0_ramp_periods) separated: the
issue's accuracy limits on one subject, against the phantom's truth."""

from __future__ import annotations

import numpy as np
import pytest

from vertebrafat.core.fat_spectrum import LIVER_6PEAK
from vertebrafat.phantom import PhantomConfig, PhantomStudy, generate_subject
from vertebrafat.waterfat.separate import Separation, separate


@pytest.fixture(scope="module")
def ramped() -> tuple[PhantomStudy, Separation]:
    """Seed 0 subject 2 (3 T, 22 x 224 x 224, SNR 52) with a ramp of 1.5 water-fat shifts."""
    study = generate_subject(seed=0, index=1, echoes=True,
                             config=PhantomConfig(b0_ramp_periods=1.5))
    te = np.asarray(study.acquisition.echo_times_ms) * 1e-3
    return study, separate(study.echoes, te, study.acquisition.field_strength_t)


def test_the_ramp_spans_its_water_fat_shifts_and_leaves_the_maps(ramped) -> None:  # type: ignore[no-untyped-def]
    study, _ = ramped
    plain = generate_subject(seed=0, index=1, echoes=True)
    shift = abs(LIVER_6PEAK.main_peak_hz(3.0))  # 434 Hz
    ramp = study.field_map_hz - plain.field_map_hz
    assert float(ramp[0, -1, 0] - ramp[0, 0, 0]) == pytest.approx(1.5 * shift, rel=1e-5)
    assert np.array_equal(study.image.water, plain.image.water)
    assert np.array_equal(study.image.ff, plain.image.ff)
    assert not np.array_equal(study.echoes, plain.echoes)


def test_no_swapped_body_voxel_fat_fraction_and_r2star_within_limits(ramped) -> None:  # type: ignore[no-untyped-def]
    """Body: tissue (truth R2* > 0) with signal above 10 noise SDs. No voxel's field map is
    off by half a water-fat shift or more; the mean FF error of the marrow interior is within
    1 pp of the truth; the mean R2* of each lumbar body's marrow (the body less two voxels of
    its rim in plane, as in benchmarks/bench_separate.py) within 10 % of the truth."""
    study, sep = ramped
    acq = study.acquisition
    body = ((study.image.water + study.image.fat) > 10 * 1000 / acq.snr) & (
        study.r2star_true > 0)
    p = sep.period_hz
    err = (sep.field_map_hz - study.field_map_hz + p / 2) % p - p / 2
    assert int(np.sum(body & (np.abs(err) > abs(LIVER_6PEAK.main_peak_hz(3.0)) / 2))) == 0
    from scipy import ndimage as ndi

    lumbar = (study.labels >= 20) & (study.labels <= 24)
    core = ndi.binary_erosion(lumbar, np.ones((1, 5, 5))) & body
    assert abs(float((sep.ff_percent[core] - study.ff_true[core]).mean())) < 1.0
    for label in range(20, 25):
        m = ndi.binary_erosion(study.labels == label, np.ones((1, 3, 3)), 2)
        truth = float(study.r2star_true[m].mean())
        assert float(sep.r2star_per_s[m].mean()) == pytest.approx(truth, rel=0.10), label
