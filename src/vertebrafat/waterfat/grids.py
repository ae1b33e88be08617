"""Between the full grid and the coarse grid of the field-map estimate (pure numpy/scipy)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

C64 = npt.NDArray[np.complex64]
F32 = npt.NDArray[np.float32]


def block_mean(vol: C64, factor: int) -> C64:
    """Complex mean over ``factor x factor`` in-plane blocks of ``(echoes, S, R, C)`` (edge
    blocks zero-padded)."""
    if factor == 1:
        return vol
    n, s, r, c = vol.shape
    pr, pc = (-r) % factor, (-c) % factor
    v = np.pad(vol, ((0, 0), (0, 0), (0, pr), (0, pc)))
    v = v.reshape(n, s, (r + pr) // factor, factor, (c + pc) // factor, factor)
    return v.mean(axis=(3, 5)).astype(np.complex64)


def upsample(
    coarse: npt.NDArray[np.floating],
    factor: int,
    shape: tuple[int, ...],
    *,
    period: float | None = None,
) -> F32:
    """Linear interpolation of a coarse ``(S, r, c)`` map onto the full ``shape`` (block
    centres aligned, edges held). A periodic map (``period``) is interpolated as the phasor
    ``exp(2 pi i map / period)``, so wraps do not smear."""
    if factor == 1:
        return np.asarray(coarse, np.float32)
    rows = (np.arange(shape[1]) + 0.5) / factor - 0.5
    cols = (np.arange(shape[2]) + 0.5) / factor - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")

    def interp(a: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        return np.stack([ndi.map_coordinates(a[k], [rr, cc], order=1, mode="nearest")
                         for k in range(shape[0])])

    if period is None:
        return interp(np.asarray(coarse, np.float64)).astype(np.float32)
    ph = 2 * np.pi * np.asarray(coarse, np.float64) / period
    angle = np.arctan2(interp(np.sin(ph)), interp(np.cos(ph)))
    return (angle * period / (2 * np.pi)).astype(np.float32)


def demodulate(vol: C64, psi: F32, t: npt.NDArray[np.float64]) -> C64:
    """``vol * exp(-2 pi i psi t)`` for each echo time ``t`` (complex64)."""
    out = np.empty(vol.shape, np.complex64)
    for k, tk in enumerate(t):
        arg = psi * np.float32(-2 * np.pi * tk)
        np.multiply(vol[k], np.cos(arg) + np.complex64(1j) * np.sin(arg), out=out[k])
    return out


def unwrapped(
    field: F32, coarse_psi: npt.NDArray[np.floating], energy: F32, factor: int, period: float
) -> F32:
    """``field`` (Hz, full grid, known up to multiples of ``period``) made continuous.

    The coarse map is phase-unwrapped (:func:`skimage.restoration.unwrap_phase`, cells with
    less than 2 % of the 99th-percentile energy masked) and brought to full resolution by
    nearest neighbour; each voxel takes the multiple of ``period`` that puts it nearest. The
    whole map is then moved by a multiple of ``period`` so that its median over the signal
    lies within half a period of zero.
    """
    from skimage.restoration import unwrap_phase

    phase = 2 * np.pi * np.asarray(coarse_psi, np.float64) / period
    low = energy <= 0.02 * float(np.percentile(energy, 99))
    un = phase
    if np.squeeze(phase).ndim in (2, 3) and not low.all():
        masked = np.ma.masked_array(np.squeeze(phase), np.squeeze(low))
        done = unwrap_phase(masked, rng=0)
        un = np.asarray(np.ma.filled(done, 0.0)).reshape(phase.shape)
    un = un * period / (2 * np.pi)
    near = np.repeat(np.repeat(un, factor, axis=1), factor, axis=2)[:, : field.shape[1],
                                                                     : field.shape[2]]
    out = field + period * np.round((near - field) / period)
    signal = np.repeat(np.repeat(~low, factor, axis=1), factor, axis=2)[
        :, : field.shape[1], : field.shape[2]]
    centre = float(np.median(out[signal])) if signal.any() else 0.0
    return (out - period * np.round(centre / period)).astype(np.float32)
