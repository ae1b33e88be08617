"""Tests of vertebrafat.phantom: determinism, truth, the signal fit, raters and rescans."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertebrafat.phantom import PhantomConfig, generate_cohort, generate_subject
from vertebrafat.phantom.acquisition import Acquisition, plane_coordinates, scan_affine
from vertebrafat.phantom.signal import (
    air_threshold,
    complex_noise,
    fit_echoes,
    fit_planes,
    planes_to_echoes,
    simulate_echoes,
    simulate_planes,
)
from vertebrafat.phantom.spine import rounded_rect
from vertebrafat.phantom.tissue import abdomen_texture
from vertebrafat.stats.overlap import dice

TES_3T = (1.2, 2.2, 3.2, 4.2, 5.2, 6.2)
TES_15T = (1.4, 3.4, 5.4, 7.4, 9.4, 11.4)


@pytest.fixture(scope="module")
def study():
    return generate_subject(seed=5, index=2)


def test_same_seed_same_arrays(study) -> None:
    again = generate_subject(seed=5, index=2)
    assert np.array_equal(study.image.water, again.image.water)
    assert np.array_equal(study.image.ff, again.image.ff)
    assert np.array_equal(study.labels, again.labels)
    assert np.array_equal(study.rater_b, again.rater_b)
    assert study.truth == again.truth


def test_other_seed_other_subject(study) -> None:
    other = generate_subject(seed=6, index=2)
    assert other.marrow.baseline_ff != study.marrow.baseline_ff


def test_image_contract(study) -> None:
    img = study.image
    assert img.channels == ("water", "fat", "ff", "r2star")
    assert img.meta.subject == "P003" and img.meta.scan == "1" and img.meta.vendor == "phantom"
    assert img.meta.field_strength_t in (1.5, 3.0)
    acq = study.acquisition
    assert img.shape == (acq.n_slices, *acq.matrix)
    assert 16 <= acq.n_slices <= 30 and 3.0 <= acq.slice_thickness_mm <= 5.0
    assert 280 <= acq.fov_mm[0] <= 380
    assert img.spacing_mm[0] == pytest.approx(acq.slice_thickness_mm)
    assert study.echoes is None


def test_affine_axes_are_right_inferior_posterior() -> None:
    acq = Acquisition(
        n_slices=3,
        slice_thickness_mm=4.0,
        matrix=(10, 20),
        fov_mm=(100.0, 300.0),
        field_strength_t=3.0,
        echo_times_ms=TES_3T,
        snr=50,
        angle_deg=0.0,
        centre_mm=(1.0, 2.0, 3.0),
    )
    aff = scan_affine(acq)
    np.testing.assert_allclose(aff[:3, :3], [[4, 0, 0], [0, 0, -15], [0, -10, 0]], atol=1e-12)
    np.testing.assert_allclose(aff @ [1, 4.5, 9.5, 1], [1, 2, 3, 1], atol=1e-12)


def test_truth_is_mean_of_true_ff_in_label(study) -> None:
    levels = [r.level for r in study.truth]
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(levels)
    for row in study.truth:
        mask = study.labels == row.label
        assert row.n_voxels == int(mask.sum())
        assert row.ff_mean == pytest.approx(
            float(study.ff_true[mask].astype(np.float64).mean()), abs=1e-9
        )


def test_truth_is_the_marrow_not_its_partial_volume(study) -> None:
    """Boundary voxels of a body carry the marrow's FF, not a mixture with disc or fat: the
    2 mm-eroded core and the whole body give the same mean (within noise of the texture),
    where the voxel FF map read the core 1.7 pp fattier than the whole body."""
    from vertebrafat.measure import bmf_table

    whole = {r.label: r.ff_mean for r in study.truth}
    core = bmf_table(study.ff_true, study.labels, affine=study.image.affine, erosion_mm=2.0)
    diffs = [r.ff_mean - whole[r.label] for r in core if np.isfinite(r.ff_mean)]
    assert len(diffs) >= 8
    assert abs(float(np.mean(diffs))) < 0.4


def test_images_do_not_depend_on_keeping_the_echoes(study) -> None:
    kept = generate_subject(seed=5, index=2, echoes=True)
    assert kept.echoes is not None
    for role in ("water", "fat", "ff", "r2star"):
        assert np.array_equal(getattr(kept.image, role), getattr(study.image, role)), role


def test_labels_cover_T11_to_S1(study) -> None:
    present = set(np.unique(study.labels).tolist())
    assert {18, 19, 20, 21, 22, 23, 24, 26} <= present or {19, 20, 21, 22, 23, 24, 26} <= present


def test_measured_ff_close_to_truth(study) -> None:
    """The fitted FF inside each lumbar body is within 3 pp of the truth (noise + bias)."""
    for row in study.truth:
        if row.level.startswith("L"):
            fitted = float(study.image.ff[study.labels == row.label].mean())
            assert fitted == pytest.approx(row.ff_mean, abs=3.0)


@pytest.mark.parametrize(
    ("ff", "r2", "field", "tes"),
    [
        pytest.param(0.05, 40.0, 3.0, TES_3T, id="3T-low-ff"),
        pytest.param(0.40, 120.0, 3.0, TES_3T, id="3T-marrow"),
        pytest.param(0.85, 60.0, 3.0, TES_3T, id="3T-fatty"),
        pytest.param(0.40, 80.0, 1.5, TES_15T, id="1.5T-marrow"),
        pytest.param(0.40, 120.0, 3.0, (1.0, 2.0, 3.5, 4.0, 6.0, 7.5), id="3T-uneven-TEs"),
    ],
)
def test_fit_recovers_ff_within_1pp_at_high_snr(ff: float, r2: float, field: float, tes) -> None:
    rng = np.random.default_rng(0)
    shape = (2, 20, 20)
    fmap = rng.normal(0, 60, shape)
    echoes = simulate_echoes(
        np.full(shape, 0.8 * (1 - ff)),
        np.full(shape, 0.8 * ff),
        np.full(shape, r2),
        coil=np.ones(shape),
        field_map_hz=fmap,
        phase_rad=np.full(shape, 1.1),
        tes_ms=tes,
        field_t=field,
        sigma=0.8 / 500,
        rng=rng,
    )
    w, f, r2_fit = fit_echoes(echoes, tes_ms=tes, field_t=field, field_map_hz=fmap, sigma=0.8 / 500)
    assert float(np.mean(100 * f / (w + f))) == pytest.approx(100 * ff, abs=1.0)
    assert float(np.median(r2_fit)) == pytest.approx(r2, abs=15.0)


def test_fit_takes_3t_marrow_at_50_percent_for_signal_not_air() -> None:
    """3 T, TE1 1.2 ms (fat's main peak nearly opposed to water): marrow at 50 % FF, proton
    density 0.6, R2* 110/s has a first echo of 0.058, under 5 noise SDs at SNR 49 (0.102),
    while its second echo is 0.43 (21 SDs). The air test must look at all echoes: the voxels
    get their R2* (within 10 % of 110/s, not 0) and FF within 0.5 pp of 50 %."""
    rng = np.random.default_rng(0)
    shape = (40, 40)
    sigma = 1 / 49
    planes = simulate_planes(
        np.full(shape, 0.3),
        np.full(shape, 0.3),
        np.full(shape, 110.0),
        coil=np.ones(shape),
        tes_ms=TES_3T,
        field_t=3.0,
        sigma=sigma,
        rng=rng,
    )
    first = np.hypot(planes[0, 0], planes[1, 0])
    assert float(np.median(first)) < 5 * sigma  # the old test called these voxels air
    w, f, r2 = fit_planes(planes, tes_ms=TES_3T, field_t=3.0, sigma=sigma)
    assert np.all(r2 > 0)
    assert float(np.median(r2)) == pytest.approx(110.0, rel=0.10)
    assert float(np.mean(100 * f / (w + f))) == pytest.approx(50.0, abs=0.5)


def test_air_threshold_is_the_five_sd_false_alarm_rate() -> None:
    """One echo: |s|^2 > 25 sigma^2 (5 SDs), as before; six echoes: the chi-square (12
    degrees of freedom) quantile at the same rate exp(-12.5), 47.56; and pure noise is air."""
    assert air_threshold(1) == pytest.approx(25.0, abs=1e-9)
    assert air_threshold(6) == pytest.approx(47.56, abs=0.01)
    rng = np.random.default_rng(1)
    noise = complex_noise(rng, (6, 100, 100), 0.01)
    assert not np.any(fit_planes(noise, tes_ms=TES_3T, field_t=3.0, sigma=0.01)[2])


def test_fit_does_not_depend_on_the_voxel_phase() -> None:
    """The scanner simulates echoes without the per-voxel phase phi0 and puts it only on the
    echoes it keeps: the fitted magnitudes and R2* of the phased echoes equal those of the
    unphased planes."""
    rng = np.random.default_rng(4)
    shape = (3, 16, 16)
    planes = simulate_planes(
        rng.uniform(0.0, 0.8, shape),
        rng.uniform(0.0, 0.8, shape),
        rng.uniform(20.0, 200.0, shape),
        coil=np.ones(shape),
        tes_ms=TES_3T,
        field_t=3.0,
        sigma=0.01,
        rng=rng,
    )
    phased = planes_to_echoes(planes, rng.uniform(-np.pi, np.pi, shape))
    plain = fit_planes(planes, tes_ms=TES_3T, field_t=3.0, sigma=0.01)
    turned = fit_echoes(phased, tes_ms=TES_3T, field_t=3.0, field_map_hz=None, sigma=0.01)
    # equal up to float32 rounding, which moves the parabola's R2* by a fraction of 1/s
    np.testing.assert_allclose(plain[0], turned[0], rtol=5e-3, atol=1e-4)  # |W|
    np.testing.assert_allclose(plain[1], turned[1], rtol=5e-3, atol=1e-4)  # |F|
    np.testing.assert_allclose(plain[2], turned[2], atol=0.5)  # R2*, 1/s


def test_rescan_same_marrow_new_position(study) -> None:
    scan2 = generate_subject(seed=5, index=2, scan=2)
    assert scan2.marrow == study.marrow and scan2.anatomy == study.anatomy
    assert scan2.image.meta.scan == "2"
    assert not np.allclose(scan2.image.affine, study.image.affine)
    shift = np.linalg.norm(scan2.image.affine[:3, 3] - study.image.affine[:3, 3])
    assert 0.1 < shift < 40.0
    by_level = {r.level: r.ff_mean for r in study.truth}
    for row in scan2.truth:
        if row.level in ("L2", "L3", "L4") and "partial_fov" not in row.flags:
            assert row.ff_mean == pytest.approx(by_level[row.level], abs=1.5)


def test_raters_only_on_annotated_slices(study) -> None:
    assert 5 <= len(study.annotated_slices) <= 7
    drawn = np.flatnonzero(study.rater_a.any(axis=(1, 2)))
    assert set(drawn.tolist()) <= set(study.annotated_slices)
    assert (study.rater_a > 0).sum() < (study.rater_b > 0).sum()


def test_cohort_yields_rescans_in_order() -> None:
    cfg = PhantomConfig(snr_range=(200.0, 200.0))
    got = [
        (s.image.meta.subject, s.image.meta.scan)
        for s in generate_cohort(n_subjects=1, seed=3, rescans=True, config=cfg)
    ]
    assert got == [("P001", "1"), ("P001", "2")]


def test_abdomen_texture_equals_sum_of_plane_waves() -> None:
    """The separable (row x column) evaluation equals the direct sum of cosines."""
    rng = np.random.default_rng(1)
    waves = np.column_stack([rng.normal(0, 0.3, (5, 3)), rng.uniform(0, 6, 5)])
    acq = Acquisition(
        n_slices=2,
        slice_thickness_mm=4.0,
        matrix=(30, 20),
        fov_mm=(300.0, 200.0),
        field_strength_t=3.0,
        echo_times_ms=TES_3T,
        snr=50,
        angle_deg=7.0,
        centre_mm=(1.0, 2.0, 3.0),
    )
    y, z = plane_coordinates(scan_affine(acq), (2, 30, 20))
    direct = sum(np.cos(kx * 2.5 + ky * y + kz * z + ph) for kx, ky, kz, ph in waves)
    np.testing.assert_allclose(abdomen_texture(waves, 2.5, y, z), direct / np.sqrt(2.5), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(u=st.floats(-50, 50), v=st.floats(-50, 50), hu=st.floats(2, 20), hv=st.floats(2, 20))
def test_rounded_rect_sign_matches_inside(u: float, v: float, hu: float, hv: float) -> None:
    d = float(rounded_rect(np.array(u), np.array(v), hu, hv, 1.0))
    if abs(u) > hu or abs(v) > hv:
        assert d > 0
    if abs(u) < hu - 1 and abs(v) < hv - 1:
        assert d < 0


@pytest.mark.slow
def test_rater_dice_and_bias_over_20_subjects() -> None:
    dices, bias = [], []
    for s in generate_cohort(n_subjects=20, seed=11):
        sl = list(s.annotated_slices)
        truth = s.labels[sl] > 0
        a, b = s.rater_a[sl] > 0, s.rater_b[sl] > 0
        dices += [dice(truth, a), dice(truth, b)]
        ff = s.image.ff[sl]
        for label in (20, 21, 22, 23, 24):
            la, lb = s.rater_a[sl] == label, s.rater_b[sl] == label
            if la.any() and lb.any():
                bias.append(float(ff[lb].mean() - ff[la].mean()))
    assert 0.85 <= float(np.mean(dices)) <= 0.95
    assert 0.5 <= float(np.mean(bias)) <= 2.0


def test_complex_noise_is_circular_gaussian_with_sigma() -> None:
    """Box-Muller noise: SD sigma in each part, kurtosis 3, parts uncorrelated, and P(|n| >
    2 sigma) = exp(-2) for a circular complex Gaussian (|n|^2 / sigma^2 is chi-square 2)."""
    noise = complex_noise(np.random.default_rng(8), (400_000,), 0.5)
    re, im = noise.astype(np.float64)
    assert re.std() == pytest.approx(0.5, rel=0.01) and im.std() == pytest.approx(0.5, rel=0.01)
    assert float(np.mean(re**4) / np.mean(re**2) ** 2) == pytest.approx(3.0, abs=0.05)
    assert abs(float(np.corrcoef(re, im)[0, 1])) < 0.01
    tail = float(np.mean(np.hypot(re, im) > 1.0))
    assert tail == pytest.approx(np.exp(-2.0), abs=0.003)
