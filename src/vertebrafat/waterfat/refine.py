"""Voxelwise refinement near a field map: Gauss-Newton on the complex field (T2*-IDEAL).

With ``z = -R2* + i 2 pi dpsi`` the model of a demodulated voxel is
``y(t) = (W + F c(t)) e(t)``, ``e(t) = exp(z t)``: linear in ``W`` and ``F``, holomorphic in
``z``. Each step solves ``W`` and ``F`` by least squares at the current ``z`` (a 2x2 complex
solve) and moves ``z`` by the Gauss-Newton step of the problem with ``W`` and ``F`` projected
out (variable projection in Kaufman's form): with the model ``m = g e``, ``g = W + F c``, the
residual ``r = y - m`` and the derivative ``j = t m``, ``dz = <j, r> / ||P j||^2``, where ``P``
projects away from the water and fat columns (``r`` is already orthogonal to them). R2* and
``dpsi`` come out together as the real and imaginary parts of ``z``.

Where the echoes barely constrain the field or the decay (little signal, or R2* so high that
only the first echo carries any), Gaussian priors keep ``dpsi`` near the regularised estimate
and R2* near the coarse grid's (whose cells average many voxels): the objective is
``||r||^2 / sigma^2 + (dpsi / field_sd_hz)^2 + ((R2* - R2*_0) / r2star_sd)^2`` (``sigma^2`` the
noise power per complex sample), which adds ``mu = sigma^2 / (2 pi field_sd_hz)^2`` to the
denominator of the imaginary part of the step (``sigma^2 / r2star_sd^2`` to the real part) and
the prior terms to the residual each voxel is judged by.

Every sum over echoes is a small matrix product over voxels; chunks of voxels run on two
threads (NumPy releases the GIL), in float32/complex64.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

_CHUNK = 16384
QUIET_SNR = 1.5
"""Voxels whose echoes average less than this many noise SDs (amplitude) keep R2* 0 and the
estimated field: with no signal, a fit of the decay only extrapolates noise back to t = 0."""
C64 = npt.NDArray[np.complex64]
F32 = npt.NDArray[np.float32]


def refine(
    demodulated: npt.NDArray[np.complexfloating],
    te_s: npt.NDArray[np.floating],
    phasor: npt.NDArray[np.complexfloating],
    r2star_start: npt.NDArray[np.floating],
    *,
    iterations: int = 4,
    max_shift_hz: float,
    max_r2star: float = 1000.0,
    noise_power: float = 0.0,
    field_sd_hz: float = np.inf,
    r2star_sd: float = np.inf,
    threads: int = 2,
) -> tuple[C64, C64, F32, F32]:
    """Water, fat, R2* and the field correction of demodulated echoes.

    Parameters
    ----------
    demodulated : (echoes, V) complex
        Echoes with the field-map estimate already removed (clockwise convention).
    te_s, phasor : (echoes,)
        Echo times (s) and the fat phasor ``c(t)``.
    r2star_start : (V,)
        Starting R2* (1/s).
    iterations : int
        Gauss-Newton steps.
    max_shift_hz : float
        The correction stays within ``+-max_shift_hz`` of the estimate (so that a voxel cannot
        walk onto the swapped solution).
    max_r2star : float
        R2* stays within ``[0, max_r2star]``.
    noise_power : float
        ``sigma^2``, the noise power ``E|n|^2`` per complex sample (see
        :func:`noise_power`); 0 turns the prior off. Voxels with echo energy under
        ``QUIET_SNR^2 * echoes * sigma^2`` are not refined (R2* 0, no correction).
    field_sd_hz : float
        Standard deviation of the prior on the correction (Hz).
    r2star_sd : float
        Standard deviation of the prior on R2* around ``r2star_start`` (1/s).
    threads : int
        Chunks of voxels processed at once.

    Returns
    -------
    water, fat : (V,) complex64
        At ``t = 0``.
    r2star : (V,) float32
        1/s.
    shift_hz : (V,) float32
        Correction to add to the field-map estimate.
    """
    n_vox = demodulated.shape[1]
    out = (np.empty(n_vox, np.complex64), np.empty(n_vox, np.complex64),
           np.empty(n_vox, np.float32), np.empty(n_vox, np.float32))
    consts = _Constants(te_s, phasor)
    mu = np.float32(noise_power / (2 * np.pi * field_sd_hz) ** 2 if np.isfinite(field_sd_hz)
                    else 0.0)
    mu_r = np.float32(noise_power / r2star_sd**2 if np.isfinite(r2star_sd) else 0.0)
    quiet = np.float32(QUIET_SNR**2 * demodulated.shape[0] * noise_power)

    def run(a: int) -> None:
        part = slice(a, a + _CHUNK)
        res = _refine_chunk(np.asarray(demodulated[:, part], np.complex64),
                            np.asarray(r2star_start[part], np.float32), consts, iterations,
                            np.float32(2 * np.pi * max_shift_hz), np.float32(max_r2star),
                            (mu, mu_r), quiet)
        for o, v in zip(out, res, strict=True):
            o[part] = v

    starts = range(0, n_vox, _CHUNK)
    with threadpool_limits(limits=1, user_api="blas"):  # the threads are ours, not BLAS's
        if threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(run, starts))
        else:
            for a in starts:
                run(a)
    return out


class _Constants:
    """Echo-time weights of the sums: ``sums @ |e|^2`` gives the Gram matrix entries."""

    def __init__(self, te_s: npt.NDArray[np.floating], phasor: npt.NDArray[np.complexfloating]):
        t = np.asarray(te_s, np.float64)
        c = np.asarray(phasor, np.complex128)
        rows = [np.ones_like(t), c.real, c.imag, np.abs(c) ** 2]
        self.sums = np.stack(rows + [t * r for r in rows]).astype(np.float32)  # (8, N)
        self.b = np.stack([np.ones_like(c), np.conj(c)]).astype(np.complex64)  # (2, N)
        self.t = t.astype(np.float32)[:, None]
        self.t_row = t.astype(np.float32)[None]
        self.t2_row = (t * t).astype(np.float32)[None]
        self.c = c.astype(np.complex64)[:, None]
        d = np.diff(t)
        even = d.size > 0 and float(np.ptp(d)) <= 1e-9
        self.spacing: float | None = float(d.mean()) if even else None


    @staticmethod
    def power(y: C64) -> F32:
        """``||y||^2`` per voxel."""
        return np.sum(y.real * y.real + y.imag * y.imag, axis=0)


def _exp(z: C64, k: _Constants) -> C64:
    """``exp(z t)`` for every echo time, ``(echoes, V)``: for even spacing by a recurrence on
    ``exp(z dTE)``, and in real arithmetic (complex ``exp`` is many times slower in NumPy)."""
    t = k.t[:, 0]
    re, im = z.real, z.imag

    def cis(scale: float) -> C64:
        out = np.empty(z.shape, np.complex64)
        mag = np.exp(re * np.float32(scale))
        ang = im * np.float32(scale)
        out.real = mag * np.cos(ang)
        out.imag = mag * np.sin(ang)
        return out

    e = np.empty((t.size, z.size), np.complex64)
    if k.spacing is None:
        for i, ti in enumerate(t):
            e[i] = cis(float(ti))
        return e
    e[0] = cis(float(t[0]))
    q = cis(k.spacing)
    for i in range(1, t.size):
        np.multiply(e[i - 1], q, out=e[i])
    return e


def noise_power(
    demodulated: npt.NDArray[np.complexfloating],
    te_s: npt.NDArray[np.floating],
    phasor: npt.NDArray[np.complexfloating],
    r2star: npt.NDArray[np.floating],
) -> float:
    """Noise power per complex sample ``E|n|^2``.

    From the background: the mean energy per echo of the dimmest tenth of the voxels, when
    it is under 1 % of the median energy (there is a background; an over-estimate when little
    of the field of view is empty). With more than three echoes, also from the residuals of
    the fit: the median residual energy, after three Gauss-Newton steps without priors, of up
    to 20 000 of the brighter half of the voxels, over ``echoes - 3`` (the complex unknowns
    ``W``, ``F``, ``z``; model error counts as noise). The smaller of the two is taken; 0 when
    neither is available.
    """
    k = _Constants(te_s, phasor)
    y = np.asarray(demodulated, np.complex64)
    n_echo = y.shape[0]
    power = k.power(y)
    dim = power[power <= np.quantile(power, 0.1)]
    floor = float(dim.mean()) / n_echo
    if floor * n_echo >= 0.01 * float(np.median(power)):
        floor = np.inf  # no background to measure the noise in
    if n_echo <= 3:
        return floor if np.isfinite(floor) else 0.0
    bright = np.flatnonzero(power >= np.median(power))
    pick = bright[:: max(1, bright.size // 20000)]
    zero = np.float32(0)
    with threadpool_limits(limits=1, user_api="blas"):
        _, _, r2, shift = _refine_chunk(
            y[:, pick], np.asarray(r2star, np.float32)[pick], k, 3, np.float32(np.inf),
            np.float32(1000), (zero, zero), zero)
        z = (-r2 + 2j * np.pi * shift).astype(np.complex64)
        cost = _linear(y[:, pick], z, k)[-1]
    return min(floor, float(np.median(cost)) / (n_echo - 3))


def _linear(y: C64, z: C64, k: _Constants) -> tuple[C64, C64, F32, F32, C64, F32, F32]:
    """Least-squares ``W``, ``F`` at ``z``, the sums the step needs, and the residual energy
    ``||y||^2 - b^H G^-1 b``."""
    e = _exp(z, k)
    ae2 = e.real * e.real + e.imag * e.imag
    s = k.sums @ ae2  # g11, Re g12, Im g12, g22, then the same weighted by t
    u = np.conj(e) * y
    b = k.b @ u
    g12 = s[1] + 1j * s[2]
    det = s[0] * s[3] - (s[1] * s[1] + s[2] * s[2])
    det = np.where(det > 0, det, 1).astype(np.float32)
    w = ((s[3] * b[0] - g12 * b[1]) / det).astype(np.complex64)
    f = ((s[0] * b[1] - np.conj(g12) * b[0]) / det).astype(np.complex64)
    fit = (np.conj(b[0]) * w + np.conj(b[1]) * f).real
    return w, f, s, det, u, ae2, (k.power(y) - fit).astype(np.float32)


def _refine_chunk(
    y: C64, r2: F32, k: _Constants, iterations: int, max_phase: np.float32,
    max_r2: np.float32, priors: tuple[np.float32, np.float32], quiet_power: np.float32,
) -> tuple[C64, C64, F32, F32]:
    """Gauss-Newton from ``z = -r2``; each voxel keeps the ``z`` of least residual seen (the
    start included), so a step into noise never makes a voxel worse, unless that fit ran R2*
    to its bound, has water and fat cancelling (``|W + F| < (|W| + |F|) / 2``) or four times
    brighter than the brightest echo: then the start. Voxels whose echo energy is under
    ``quiet_power`` keep ``z = 0``."""
    z = (-np.clip(r2, 0, max_r2)).astype(np.complex64)
    z0 = z.real.copy()
    w, f, s, det, u, ae2, cost = _linear(y, z, k)  # at the start: no prior term
    best_z, best_w, best_f, best_cost = z, w, f, cost
    start = (z, w, f)
    quiet = k.power(y) < quiet_power
    if quiet.any():  # nothing to fit a decay or a field to: R2* 0, the field as estimated
        z = np.where(quiet, np.complex64(0), z).astype(np.complex64)
        w, f, s, det, u, ae2, cost = _linear(y, z, k)
        best_z, best_w, best_f = z, w, f
        best_cost = np.where(quiet, -np.inf, cost).astype(np.float32)
    for _ in range(iterations):
        z = _step(z, z0, w, f, s, det, u, ae2, k, max_phase, max_r2, priors)
        w, f, s, det, u, ae2, cost = _linear(y, z, k)
        cost = cost + priors[0] * z.imag * z.imag + priors[1] * (z.real - z0) ** 2
        better = cost < best_cost
        best_z = np.where(better, z, best_z)
        best_w = np.where(better, w, best_w)
        best_f = np.where(better, f, best_f)
        best_cost = np.where(better, cost, best_cost)
    # a fit that only got better by running R2* to its bound, by water and fat cancelling
    # each other, or with water and fat four times the brightest echo, extrapolates noise or
    # misfit back to t = 0: the voxel keeps its start
    total = np.abs(best_w) + np.abs(best_f)
    odd = ((best_z.real <= -0.95 * max_r2) | (np.abs(best_w + best_f) < 0.5 * total)
           | (total > 4 * np.abs(y).max(axis=0)))
    if odd.any():
        best_z = np.where(odd, start[0], best_z)
        best_w = np.where(odd, start[1], best_w)
        best_f = np.where(odd, start[2], best_f)
    return (best_w, best_f, -best_z.real.astype(np.float32),
            (best_z.imag / (2 * np.pi)).astype(np.float32))


def _step(
    z: C64, z0: F32, w: C64, f: C64, s: F32, det: F32, u: C64, ae2: F32, k: _Constants,
    max_phase: np.float32, max_r2: np.float32, priors: tuple[np.float32, np.float32],
) -> C64:
    """One Gauss-Newton step of ``z`` (see module docstring), kept inside the bounds."""
    g12 = s[1] + 1j * s[2]
    g = w[None] + f[None] * k.c
    g2 = (g.real * g.real + g.imag * g.imag) * ae2
    num = (k.t_row @ (np.conj(g) * u))[0] - (k.t_row @ g2)[0]
    jj = (k.t2_row @ g2)[0]
    # h = [e, c e]^H j with j = t m: h1 = W s_t + F s_tc, h2 = W conj(s_tc) + F s_tcc
    stc = s[5] + 1j * s[6]
    h1 = w * s[4] + f * stc
    h2 = w * np.conj(stc) + f * s[7]
    p1 = (s[3] * h1 - g12 * h2) / det
    p2 = (s[0] * h2 - np.conj(g12) * h1) / det
    den = jj - (np.conj(h1) * p1 + np.conj(h2) * p2).real
    ok = den > 0
    safe = np.where(ok, den, 1)
    mu, mu_r = priors
    d_re = np.where(ok, (num.real - mu_r * (z.real - z0)) / (safe + mu_r), 0)
    d_im = np.where(ok, (num.imag - mu * z.imag) / (safe + mu), 0)
    moved = z + d_re + 1j * d_im
    return (np.clip(moved.real, -max_r2, 0)
            + 1j * np.clip(moved.imag, -max_phase, max_phase)).astype(np.complex64)
