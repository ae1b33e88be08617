"""The multi-echo water-fat signal model (pure numpy).

Signal of one voxel at echo time ``t`` (s)::

    s(t) = (W + F c(t)) exp(-R2* t) exp(i 2 pi psi t),   c(t) = sum_p a_p exp(i 2 pi f_p t)

with complex water and fat ``W``, ``F``, one R2* for both (1/s), the B0 offset ``psi`` (Hz) and
the fat spectrum's peaks ``f_p`` (Hz, negative: fat resonates below water) and relative
amplitudes ``a_p`` (sum 1), from a :class:`~vertebrafat.core.fat_spectrum.FatModel`.

Precession: this is the sign convention of the ISMRM fat-water toolbox for data whose
``PrecessionIsClockwise`` is 1, and the phantom's. Echoes recorded with the opposite sense
(anticlockwise) are the complex conjugates of these: :func:`clockwise` conjugates them, so a
wrong flag swaps water and fat.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from vertebrafat.core.errors import InputError
from vertebrafat.core.fat_spectrum import LIVER_6PEAK, FatModel

ComplexArray = npt.NDArray[np.complexfloating]
MIN_ECHOES = 3


def fat_phasor(
    te_s: Sequence[float] | npt.NDArray[np.floating],
    field_strength_t: float,
    fat_model: FatModel = LIVER_6PEAK,
) -> npt.NDArray[np.complex128]:
    """``c(t)`` of the module docstring at each echo time, ``(echoes,)``; ``c(0) == 1``."""
    t = np.asarray(te_s, dtype=np.float64)
    freqs = np.asarray(fat_model.frequencies_hz(field_strength_t))
    amps = np.asarray(fat_model.relative_amplitudes())
    return np.sum(amps[None] * np.exp(2j * np.pi * freqs[None] * t[:, None]), axis=1)


def check_echo_times(te_s: Sequence[float] | npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Echo times as a float64 array, validated.

    Raises
    ------
    InputError
        Fewer than 3 echoes, non-finite, not strictly increasing, not positive, or above
        0.2 s (echo times given in milliseconds instead of seconds).
    """
    t = np.asarray(te_s, dtype=np.float64).ravel()
    if t.size < MIN_ECHOES:
        raise InputError(f"water-fat separation needs at least {MIN_ECHOES} echoes, got {t.size}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0) or np.any(np.diff(t) <= 0):
        raise InputError(f"echo times must be positive and increasing, got {t.tolist()}")
    if t[-1] > 0.2:
        raise InputError(f"echo times must be in seconds, got {t.tolist()} (milliseconds?)")
    return t


def uniform_spacing_s(te_s: npt.NDArray[np.floating], *, tolerance_s: float = 2e-6) -> float | None:
    """The echo spacing (s) when every spacing is the same within ``tolerance_s``, else None."""
    d = np.diff(np.asarray(te_s, dtype=np.float64))
    return float(d.mean()) if float(np.ptp(d)) <= tolerance_s else None


def clockwise(echoes: ComplexArray, *, precession_clockwise: bool) -> ComplexArray:
    """``echoes`` in the model's (clockwise) convention: conjugated when anticlockwise."""
    return echoes if precession_clockwise else np.conj(echoes)


def synthesize(
    water: npt.ArrayLike,
    fat: npt.ArrayLike,
    *,
    r2star: npt.ArrayLike,
    field_map_hz: npt.ArrayLike,
    te_s: Sequence[float] | npt.NDArray[np.floating],
    field_strength_t: float,
    fat_model: FatModel = LIVER_6PEAK,
    precession_clockwise: bool = True,
) -> npt.NDArray[np.complex128]:
    """Noise-free echoes ``(echoes, *shape)`` of the model (inputs broadcast together).

    ``water`` and ``fat`` may be complex (a common phase is the usual case).
    """
    t = check_echo_times(te_s)
    c = fat_phasor(t, field_strength_t, fat_model)
    w, f, r2, psi = np.broadcast_arrays(
        np.asarray(water), np.asarray(fat), np.asarray(r2star), np.asarray(field_map_hz)
    )
    tt = t.reshape((-1,) + (1,) * w.ndim)
    cc = c.reshape(tt.shape)
    s = (w[None] + f[None] * cc) * np.exp((-r2[None] + 2j * np.pi * psi[None]) * tt)
    return np.asarray(clockwise(s, precession_clockwise=precession_clockwise), np.complex128)
