"""``separate``: multi-echo gradient echoes -> water, fat, PDFF, R2* and the B0 field map.

Complex mode (pure numpy/scipy):

1. Echoes in the model's (clockwise) convention (:mod:`vertebrafat.waterfat.model`).
2. A coarse grid: complex means over ``factor x factor`` in-plane blocks (about 64 cells
   across; water and fat of one block still fit the model when they share the field).
3. Residual curves over one period of B0 offsets, minimised over R2*
   (:func:`~vertebrafat.waterfat.fieldmap.residual_curves`), and a smooth choice among their
   minima (:mod:`vertebrafat.waterfat.regularise`: region growing, graph-cut jump moves,
   ICM), or each cell's own minimum (``method="voxelwise"``, which swaps where the field
   varies; kept for comparison).
4. The coarse field map interpolated to full resolution and removed from the echoes; per
   voxel Gauss-Newton on R2* and the field (:mod:`vertebrafat.waterfat.refine`).
5. PDFF phase-constrained (:func:`~vertebrafat.waterfat.fraction.ff_from_complex`);
   the field map unwrapped (:func:`skimage.restoration.unwrap_phase` on the coarse map).

Magnitude mode fits the echo magnitudes alone (:mod:`vertebrafat.waterfat.magnitude`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import InputError
from vertebrafat.core.fat_spectrum import LIVER_6PEAK, FatModel
from vertebrafat.waterfat.fieldmap import FieldGrid, field_grid, residual_curves
from vertebrafat.waterfat.fraction import ff_from_complex
from vertebrafat.waterfat.grids import block_mean, demodulate, unwrapped, upsample
from vertebrafat.waterfat.magnitude import fit_magnitude
from vertebrafat.waterfat.model import check_echo_times, clockwise, fat_phasor, uniform_spacing_s
from vertebrafat.waterfat.refine import noise_power, refine
from vertebrafat.waterfat.regularise import grow, icm, jump_moves, neighbours

Method = Literal["graphcut", "growing", "voxelwise"]
Mode = Literal["complex", "magnitude"]
METHODS: tuple[str, ...] = ("graphcut", "growing", "voxelwise")
COARSE_SIZE = 64
"""In-plane size (cells) the coarse grid is brought near."""
R2STAR_SD = 50.0
"""SD (1/s) of the prior that keeps a voxel's R2* near its coarse cell's where the voxel's own
echoes say little (:mod:`vertebrafat.waterfat.refine`)."""


@dataclass(frozen=True)
class Separation:
    """Result of :func:`separate`; every array has the echoes' spatial shape.

    Attributes
    ----------
    water, fat : complex64
        Water and fat signal at ``t = 0`` (the echoes' units); ``abs`` gives the images.
        Real and non-negative in magnitude mode.
    ff_percent : float32
        Proton-density fat fraction (%); 0 where there is no signal.
    r2star_per_s : float32
        R2* (1/s), one for water and fat.
    field_map_hz : float32 or None
        B0 offset from the water frequency (Hz). With evenly spaced echoes it is unwrapped:
        field maps that differ by a multiple of ``period_hz`` explain the echoes alike (water
        and fat turned to match, so that :func:`~vertebrafat.waterfat.model.synthesize` of
        the outputs gives back the echoes), and the one whose median over the signal is
        nearest zero is given; unevenly spaced echoes have no such period, and the map is the
        one fitted. None in magnitude mode.
    period_hz : float
        ``1 / dTE`` (for uneven echoes ``1 / min dTE``).
    method : str
        ``graphcut``, ``growing``, ``voxelwise`` or ``magnitude``.
    """

    water: npt.NDArray[np.complex64]
    fat: npt.NDArray[np.complex64]
    ff_percent: npt.NDArray[np.float32]
    r2star_per_s: npt.NDArray[np.float32]
    field_map_hz: npt.NDArray[np.float32] | None
    period_hz: float
    method: str


def separate(
    echoes: npt.ArrayLike,
    te_s: Sequence[float] | npt.NDArray[np.floating],
    field_strength_t: float,
    *,
    precession_clockwise: bool = True,
    fat_model: FatModel = LIVER_6PEAK,
    mode: Mode = "complex",
    method: Method = "graphcut",
    smoothness: float = 0.01,
    iterations: int = 4,
    threads: int = 2,
) -> Separation:
    """Water-fat separation of multi-echo gradient echoes.

    Parameters
    ----------
    echoes : (echoes, rows, cols) or (echoes, slices, rows, cols)
        One complex image per echo (magnitude mode: magnitudes, or complex whose magnitude is
        used).
    te_s : sequence of float
        Echo times in seconds, increasing (at least 3).
    field_strength_t : float
        B0 in tesla (sets the fat peaks' offsets in Hz).
    precession_clockwise : bool
        The sense of precession of the echoes (the ISMRM toolbox's ``PrecessionIsClockwise``);
        ``False`` conjugates them. A wrong value swaps water and fat.
    fat_model : FatModel
        Fat spectrum; the 6-peak liver/marrow model by default.
    mode : {"complex", "magnitude"}
        Use the complex echoes, or their magnitudes only (no field map).
    method : {"graphcut", "growing", "voxelwise"}
        Field-map estimate (complex mode): region growing then graph-cut jump moves (default),
        region growing alone, or each coarse cell alone (swaps; for comparison). ``voxelwise``
        works at full resolution.
    smoothness : float
        Weight of the field map's smoothness (dimensionless; residuals and weights are both
        signal energies).
    iterations : int
        Gauss-Newton steps of the voxelwise refinement.
    threads : int
        Threads for the voxelwise parts.

    Returns
    -------
    Separation

    Raises
    ------
    InputError
        Echoes not complex in complex mode, or their count not that of the echo times; echo
        times invalid (:func:`~vertebrafat.waterfat.model.check_echo_times`); field strength
        not positive; NaN or infinite echoes; an unknown mode or method.

    Examples
    --------
    >>> from vertebrafat.waterfat.model import synthesize
    >>> te = [1.2e-3 + k * 1e-3 for k in range(6)]
    >>> s = synthesize([[300.0]], [[700.0]], r2star=80.0, field_map_hz=120.0, te_s=te,
    ...                field_strength_t=3.0)
    >>> out = separate(s, te, 3.0)
    >>> round(float(out.ff_percent[0, 0]), 1), round(float(out.field_map_hz[0, 0]))
    (70.0, 120)
    """
    s, t = _checked(echoes, te_s, field_strength_t, mode, method)
    spatial = s.shape[1:]
    vol = s.reshape(s.shape[0], *((1,) * (4 - s.ndim)), *spatial)  # (echoes, S, R, C)
    c = fat_phasor(t, field_strength_t, fat_model)
    grid = field_grid(t)
    if mode == "magnitude":
        amp, eta, r2 = fit_magnitude(np.abs(vol).reshape(len(t), -1), t, c, threads=threads)
        return Separation(
            water=(amp * (1 - eta)).astype(np.complex64).reshape(spatial),
            fat=(amp * eta).astype(np.complex64).reshape(spatial),
            ff_percent=(100 * eta).astype(np.float32).reshape(spatial),
            r2star_per_s=r2.reshape(spatial), field_map_hz=None, period_hz=grid.period_hz,
            method="magnitude")
    vol = clockwise(vol, precession_clockwise=precession_clockwise)
    factor = 1 if method == "voxelwise" else max(1, round(max(vol.shape[2:]) / COARSE_SIZE))
    coarse = block_mean(vol, factor)
    cost, r2_grid = residual_curves(coarse.reshape(len(t), -1), t, c, grid, threads=threads)
    energy = np.sum(coarse.real**2 + coarse.imag**2, axis=0).astype(np.float32)
    shift = round(fat_model.main_peak_hz(field_strength_t) / grid.period_hz * grid.n) % grid.n
    labels = _labels(cost, energy, grid, method, smoothness, shift)
    psi = grid.psi_hz[labels]
    r2_coarse = r2_grid[np.arange(labels.size), labels.ravel()].reshape(labels.shape)
    psi_full = upsample(psi, factor, vol.shape[1:], period=grid.period_hz)
    r2_full = upsample(r2_coarse, factor, vol.shape[1:])
    demod = demodulate(vol, psi_full, t).reshape(len(t), -1)
    w, f, r2star, corr = refine(
        demod, t, c, r2_full.ravel(), iterations=iterations,
        max_shift_hz=0.25 * grid.period_hz, threads=threads,
        noise_power=noise_power(demod, t, c, r2_full.ravel()),
        field_sd_hz=grid.period_hz / 16, r2star_sd=R2STAR_SD,
    )
    field = psi_full.ravel() + corr
    if method != "voxelwise" and uniform_spacing_s(t) is not None:
        # unwrapped only for evenly spaced echoes (t0 + n / P): there k whole periods more
        # explain the echoes alike, with water and fat turned by exp(-2 pi i k P t0); FF does
        # not change. Unevenly spaced echoes have no such period: the fitted map is kept.
        fitted = field
        field = unwrapped(field.reshape(vol.shape[1:]), psi, energy, factor,
                          grid.period_hz).ravel()
        turn = np.exp(np.float32(-2 * np.pi * t[0]) * np.complex64(1j)
                      * (field - fitted).astype(np.float32))
        w, f = (w * turn).astype(np.complex64), (f * turn).astype(np.complex64)
    return Separation(
        water=w.reshape(spatial),
        fat=f.reshape(spatial),
        ff_percent=ff_from_complex(w, f).reshape(spatial),
        r2star_per_s=r2star.reshape(spatial),
        field_map_hz=np.asarray(field, np.float32).reshape(spatial),
        period_hz=grid.period_hz,
        method=method,
    )


def _labels(
    cost: npt.NDArray[np.float32],
    energy: npt.NDArray[np.float32],
    grid: FieldGrid,
    method: Method,
    smoothness: float,
    shift: int,
) -> npt.NDArray[np.int64]:
    """Grid index per coarse cell, ``energy.shape``."""
    if method == "voxelwise":
        return np.argmin(cost, axis=1).reshape(energy.shape)
    data = cost - cost.min(axis=1, keepdims=True)
    nb, w = neighbours(energy)
    labels = grow(data, energy, nb, w, smoothness=smoothness)
    if method == "graphcut":
        shifts = tuple(sorted({shift, (grid.n - shift) % grid.n} - {0}))
        labels = jump_moves(data, labels, nb, w, shifts=shifts, smoothness=smoothness,
                            window=max(1, grid.n // 20))
    parity = (np.indices(energy.shape).sum(axis=0) % 2 == 1).ravel()
    labels = icm(data, labels, nb, w, parity, smoothness=smoothness)
    return labels.reshape(energy.shape)


def _checked(
    echoes: npt.ArrayLike,
    te_s: Sequence[float] | npt.NDArray[np.floating],
    field: float,
    mode: str,
    method: str,
) -> tuple[npt.NDArray[np.complex64], npt.NDArray[np.float64]]:
    if mode not in ("complex", "magnitude"):
        raise InputError(f"separate: mode must be 'complex' or 'magnitude', got {mode!r}")
    if method not in METHODS:
        raise InputError(f"separate: method must be one of {', '.join(METHODS)}, got {method!r}")
    t = check_echo_times(te_s)
    s = np.asarray(echoes)
    if mode == "complex" and not np.iscomplexobj(s):
        raise InputError("separate: complex mode needs complex echoes (magnitudes: use "
                         "magnitude mode)")
    if s.ndim not in (3, 4) or s.shape[0] != t.size:
        raise InputError(
            f"separate: echoes of shape {s.shape} do not fit {t.size} echo times "
            "(expected (echoes, rows, cols) or (echoes, slices, rows, cols))"
        )
    if not field > 0:
        raise InputError(f"separate: field strength must be positive, got {field} T")
    bad = int(np.count_nonzero(~np.isfinite(s)))
    if bad:
        raise InputError(f"separate: {bad} echo values are NaN or infinite")
    return s.astype(np.complex64, copy=False), t
