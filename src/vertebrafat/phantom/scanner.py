"""The simulated scanner: receive coil, B0 inhomogeneity, multi-echo signal, noise and the fit.

Coil sensitivity falls off from a posterior spine coil (0.2-1.2) and towards the FOV's
cranio-caudal ends; the field map is a smooth 2nd-order polynomial (~20-40 Hz per term at 3 T,
scaled with field strength), known to the fit as on a scanner's field-map estimate (so the echoes
are simulated demodulated and the field map's phase is put on only the echoes that are kept).
An optional linear ramp along the rows (cranio-caudal) makes the field vary by a given number of
water-fat shifts across the field of view (a test of water-fat separation); like the rest of the
field map it touches only the echoes kept, and it draws no random numbers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vertebrafat.core.fat_spectrum import LIVER_6PEAK
from vertebrafat.core.types import Volume
from vertebrafat.phantom.acquisition import Acquisition, plane_coordinates, scan_affine
from vertebrafat.phantom.render import Rendered
from vertebrafat.phantom.signal import (
    apply_field_map,
    fit_planes,
    planes_to_echoes,
    simulate_planes,
)
from vertebrafat.phantom.skeleton import Anatomy


def acquire(
    tissue: Rendered,
    anatomy: Anatomy,
    acq: Acquisition,
    srng: np.random.Generator,
    *,
    keep_echoes: bool = False,
    b0_ramp_periods: float = 0.0,
) -> tuple[npt.NDArray[np.complex64] | None, Volume, Volume, Volume, npt.NDArray[np.float32]]:
    """Scan the tissue maps: coil, B0 field map, phase, noisy echoes and their voxelwise fit.

    Parameters
    ----------
    tissue : Rendered
        Proton densities and R2* on the scan grid ``(slices, rows, cols)``.
    anatomy : Anatomy
        The subject (the posterior coil sits under the back, behind L3).
    acq : Acquisition
        Protocol and position (field strength, TEs, SNR of pure water at coil 1).
    srng : numpy.random.Generator
        The scan's stream: draws the coil fall-off, the field map polynomial, the phase
        offset and the complex Gaussian noise, slice by slice (in that order).
    keep_echoes : bool
        Return the echoes (the field map's phase applied); otherwise None.
    b0_ramp_periods : float
        Add to the field map a linear ramp along the rows (cranio-caudal) rising by this many
        water-fat shifts (the main fat peak's offset: 434 Hz at 3 T, 217 Hz at 1.5 T) from the
        first row to the last, centred on the middle row; 0 adds nothing.

    Returns
    -------
    echoes : ndarray of complex64, shape (n_echoes, slices, rows, cols), or None
        Noisy complex echoes (pure water at coil 1 = magnitude 1 at TE 0).
    water, fat : Volume
        Fitted magnitudes (same scale), noise bias included.
    r2star : Volume
        Fitted R2* (1/s); 0 in air.
    field_map_hz : ndarray of float32, shape (rows, cols)
        The B0 offset (Hz) put on the echoes, the same on every slice.
    """
    affine = scan_affine(acq)
    shape = (acq.n_slices, *acq.matrix)
    field_t = acq.field_strength_t
    l3 = next(v for v in anatomy.vertebrae if v.level == "L3")
    y, z = plane_coordinates(affine, shape)
    back = -l3.depth_mm / 2 - anatomy.back_depth_mm - anatomy.fat_posterior_mm
    coil = np.clip(0.2 + 0.8 * np.exp(-(y - back) / srng.uniform(110, 170)), 0.2, 1.2)
    coil = coil * np.exp(-((z / 260.0) ** 2))
    b = srng.normal(0, 1, 5) * np.array([20, 40, 40, 30, 20]) * field_t / 3.0
    fmap = b[0] + b[1] * y / 100 + b[2] * z / 100 + b[3] * (z / 100) ** 2 + b[4] * y * z / 1e4
    if b0_ramp_periods:
        span = b0_ramp_periods * abs(LIVER_6PEAK.main_peak_hz(field_t))
        fmap = fmap + span * np.linspace(-0.5, 0.5, shape[1])[:, None]
    phase = srng.uniform(-np.pi, np.pi) + 0.3 * y / 100 + 0.2 * z / 100
    tes = acq.echo_times_ms
    sigma = 1.0 / acq.snr
    w, f, r2 = (np.empty(shape, np.float32) for _ in range(3))
    echoes = np.empty((len(tes), *shape), np.complex64) if keep_echoes else None
    t = np.asarray(tes) * 1e-3
    for i in range(shape[0]):  # slice by slice: a few MB in cache instead of 100 MB of echoes
        planes = simulate_planes(
            tissue.water_pd[i],
            tissue.fat_pd[i],
            tissue.r2star[i],
            coil=coil,
            tes_ms=tes,
            field_t=field_t,
            sigma=sigma,
            rng=srng,
        )
        w[i], f[i], r2[i] = fit_planes(planes, tes_ms=tes, field_t=field_t, sigma=sigma)
        if echoes is not None:
            echoes[:, i] = apply_field_map(planes_to_echoes(planes, phase), t, fmap)
    return echoes, w, f, r2, np.asarray(fmap, np.float32)
