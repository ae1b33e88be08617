"""Multi-echo gradient-echo signal of the phantom and the voxelwise water-fat-R2* fit.

Signal model per voxel and echo time ``t`` (s)::

    s(t) = C exp(i phi0) (W + F sum_p a_p exp(i 2 pi f_p t)) exp(-R2* t) exp(i 2 pi dB0 t) + n

with the 6-peak fat spectrum of :mod:`vertebrafat.phantom.acquisition`, coil sensitivity
``C``, field map ``dB0`` (Hz) and complex Gaussian noise ``n`` (standard deviation ``sigma``
in each of the real and imaginary parts). The fit demodulates the (known) field map (the
phantom simulates the demodulated echoes directly and adds the field map only to the echoes it
writes), then for each candidate R2* on a grid solves W and F by linear least squares
(variable projection), refines R2* by a parabola through the three best residuals and takes
``|W|``, ``|F|``,
``FF = |F| / (|W| + |F|)`` (magnitude discrimination: noise bias at low SNR, as on scanners).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vertebrafat.phantom.acquisition import (
    FAT_PEAKS_AMPLITUDE,
    FAT_PEAKS_PPM,
    GYROMAGNETIC_MHZ_PER_T,
)
from vertebrafat.types import FloatArray

R2STAR_GRID = np.arange(0.0, 651.0, 50.0)
_CHUNK = 32768
ComplexArray = npt.NDArray[np.complex64]


def fat_phasor(tes_ms: tuple[float, ...], field_t: float) -> npt.NDArray[np.complex128]:
    """Complex fat signal (relative amplitudes sum to 1) at each echo time, ``(echoes,)``."""
    t = np.asarray(tes_ms) * 1e-3
    freqs = np.asarray(FAT_PEAKS_PPM) * GYROMAGNETIC_MHZ_PER_T * field_t
    amps = np.asarray(FAT_PEAKS_AMPLITUDE) / np.sum(FAT_PEAKS_AMPLITUDE)
    return np.sum(amps[None] * np.exp(2j * np.pi * freqs[None] * t[:, None]), axis=1)


def simulate_echoes(
    water: FloatArray,
    fat: FloatArray,
    r2star: FloatArray,
    *,
    coil: FloatArray,
    field_map_hz: FloatArray | None,
    phase_rad: FloatArray,
    tes_ms: tuple[float, ...],
    field_t: float,
    sigma: float,
    rng: np.random.Generator,
) -> ComplexArray:
    """Noisy complex echoes ``(echoes, *water.shape)`` (complex64) of the signal model above.

    Inputs broadcast against ``water``; echo times must be equally spaced. ``field_map_hz``
    ``None`` simulates the demodulated echoes (dB0 = 0): complex Gaussian noise is circularly
    symmetric, so they are distributed exactly as echoes demodulated after the fact, and
    :func:`apply_field_map` gives the scanner's echoes.
    """
    t = np.asarray(tes_ms) * 1e-3
    c = fat_phasor(tes_ms, field_t).astype(np.complex64)
    f32 = np.float32
    rate: npt.NDArray[np.float32] | ComplexArray = -np.asarray(r2star, f32)
    if field_map_hz is not None:
        rate = rate + np.complex64(2j * np.pi) * np.asarray(field_map_hz, f32)
    ph = np.asarray(phase_rad, f32)
    carrier = np.asarray(coil, f32) * (np.cos(ph) + np.complex64(1j) * np.sin(ph))
    decay = np.exp(rate * f32(t[0]))  # real unless a field map is simulated
    step = np.exp(rate * f32(t[1] - t[0])) if len(t) > 1 else rate
    w, f = water.astype(np.float32), fat.astype(np.float32)
    out = np.empty((len(t), *water.shape), np.complex64)
    noise = np.empty((*water.shape, 2), np.float32)
    for k in range(len(t)):
        mix = f * c[k]
        mix += w
        mix *= decay
        np.multiply(mix, carrier, out=out[k])
        rng.standard_normal(out=noise, dtype=np.float32)
        noise *= f32(sigma)
        out[k].view(np.float32).reshape(noise.shape)[...] += noise
        decay *= step
    return out


def fit_echoes(
    echoes: ComplexArray,
    *,
    tes_ms: tuple[float, ...],
    field_t: float,
    field_map_hz: FloatArray | None,
    sigma: float = 0.0,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Water and fat magnitudes and R2* (1/s, 0-650) from echoes ``(echoes, *shape)``.

    The field map is taken as known (``None``: the echoes are already demodulated). Voxels
    whose first echo is below ``5 * sigma`` (air) get R2* 0 and a plain linear fit. Returns
    float32 arrays of ``shape``.
    """
    shape = echoes.shape[1:]
    t = np.asarray(tes_ms) * 1e-3
    s = echoes.reshape(len(t), -1)
    if field_map_hz is not None:
        s = apply_field_map(s, t, -np.broadcast_to(field_map_hz, shape).reshape(-1))
    signal = np.abs(s[0]) > 5 * sigma
    r2 = np.zeros(s.shape[1], np.float32)
    r2[signal] = _r2star_search(s[:, signal], t, fat_phasor(tes_ms, field_t))
    w, f = _solve_water_fat(s, t, fat_phasor(tes_ms, field_t), r2)
    return np.abs(w).reshape(shape), np.abs(f).reshape(shape), r2.reshape(shape)


def apply_field_map(s: ComplexArray, t: FloatArray, field_map_hz: FloatArray) -> ComplexArray:
    """Echoes ``(echoes, *shape)`` times ``exp(i 2 pi dB0 t)`` (a copy; negate ``dB0`` to
    demodulate)."""
    phase = (2 * np.pi * np.asarray(field_map_hz)).astype(np.float32)
    out = np.empty(s.shape, np.complex64)
    for k, tk in enumerate(t):
        arg = phase * np.float32(tk)
        out[k] = s[k] * (np.cos(arg) + 1j * np.sin(arg))
    return out


def _r2star_search(sv: ComplexArray, t: FloatArray, c: npt.NDArray[np.complex128]) -> FloatArray:
    """R2* (1/s) of echoes ``(echoes, N)`` maximising the variable-projection energy.

    Grid search on :data:`R2STAR_GRID` (one real float32 matrix product for the whole grid),
    refined by a parabola through the best grid point and its neighbours; clipped to the
    grid's range.
    """
    svr = np.concatenate([sv.real, sv.imag]).astype(np.float32, copy=False)
    blocks = []
    for r in R2STAR_GRID:
        a = np.stack([np.exp(-r * t), c * np.exp(-r * t)], axis=1)
        q = np.linalg.qr(a)[0].conj().T
        blocks.append(np.block([[q.real, -q.imag], [q.imag, q.real]]))
    qr = np.concatenate(blocks).astype(np.float32)
    n_grid, n = len(R2STAR_GRID), sv.shape[1]
    best = np.empty(n, np.intp)
    shift = np.empty(n, np.float32)
    for start in range(0, n, _CHUNK):  # chunks keep the projections in cache
        p = qr @ svr[:, start : start + _CHUNK]
        p *= p
        energy = p.reshape(n_grid, 4, -1).sum(axis=1)
        cols = np.arange(energy.shape[1])
        k = np.clip(np.argmax(energy, axis=0), 1, n_grid - 2)
        e0, e1, e2 = (energy[k + o, cols] for o in (-1, 0, 1))
        curv = e0 - 2 * e1 + e2
        shift[start : start + _CHUNK] = np.where(
            curv < 0, 0.5 * (e0 - e2) / np.where(curv < 0, curv, -1.0), 0.0
        )
        best[start : start + _CHUNK] = k
    step = R2STAR_GRID[1] - R2STAR_GRID[0]
    return np.clip(R2STAR_GRID[best] + np.clip(shift, -1, 1) * step, 0.0, R2STAR_GRID[-1])


def _solve_water_fat(
    s: ComplexArray, t: FloatArray, c: npt.NDArray[np.complex128], r2: npt.NDArray[np.float32]
) -> tuple[ComplexArray, ComplexArray]:
    """Complex W and F of echoes ``(echoes, N)`` by 2x2 normal equations at known R2*."""
    n = s.shape[1]
    b_w = np.zeros(n, np.complex64)
    b_f = np.zeros(n, np.complex64)
    g_wf = np.zeros(n, np.complex64)
    g_ww = np.zeros(n, np.float32)
    g_ff = np.zeros(n, np.float32)
    for k, tk in enumerate(t):
        e = np.exp(-np.float32(tk) * r2)
        es = e * s[k]
        e2 = e * e
        ck = np.complex64(c[k])
        b_w += es
        b_f += np.conj(ck) * es
        g_ww += e2
        g_wf += ck * e2
        g_ff += np.float32(abs(ck) ** 2) * e2
    det = g_ww * g_ff - (g_wf.real**2 + g_wf.imag**2)
    w = (g_ff * b_w - g_wf * b_f) / det
    f = (g_ww * b_f - np.conj(g_wf) * b_w) / det
    return w.astype(np.complex64, copy=False), f.astype(np.complex64, copy=False)
