"""Field-map estimation: VARPRO residuals over a grid of B0 offsets, regularised coarse to fine.

For each candidate B0 offset ``psi`` on a grid spanning one period of the echo spacing
(``1 / dTE``: the residual repeats with that period when the echoes are evenly spaced) and each
R2* of a short grid, water and fat are projected out (variable projection): the residual
``||s||^2 - ||Q^H s||^2``, ``Q`` an orthonormal basis of the water and fat columns, is the
least-squares misfit of the best water and fat at that ``psi`` and R2*. Its minimum over R2*
gives one residual curve per voxel (:func:`residual_curves`). A voxel-independent fit takes each
curve's lowest point (:func:`voxelwise_labels`), which is where water and fat swap: a pure
water and a pure fat voxel explain the echoes almost equally well, one fat shift apart.

:func:`regularised_labels` chooses a smooth field map instead: the curves are summed over
blocks of 2x2x2 cells into a pyramid (a block's summed curve is lowest where one field
explains water and fat of the block together, which a single voxel cannot tell), the top is
solved by its lowest points, and each finer level starts from its parent and minimises, by
iterated conditional modes with red-black sweeps, its data term plus a smoothness term
``lambda * sum_neighbours w_uv (1 - cos(2 pi (psi_u - psi_v) / period))`` (a quadratic
penalty for small differences that saturates across real edges, and is periodic like the
residual). The weights ``w_uv`` are the smaller signal energy of the two cells, so noise
follows its neighbours and both terms scale with the signal.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from vertebrafat.waterfat.model import uniform_spacing_s

R2STAR_SEARCH = tuple(float(r) for r in range(0, 481, 40))
"""R2* values (1/s) the residual curves are minimised over (then refined by a parabola)."""
_CHUNK_BYTES = 4 << 20

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class FieldGrid:
    """Candidate B0 offsets (Hz): ``psi_hz[l] = (l - n // 2) * period_hz / n``."""

    psi_hz: npt.NDArray[np.float64]
    period_hz: float
    r2star: tuple[float, ...] = R2STAR_SEARCH

    @property
    def n(self) -> int:
        return int(self.psi_hz.size)


def field_grid(te_s: npt.NDArray[np.floating], *, n_steps: int = 64) -> FieldGrid:
    """The grid of one period of ``1 / dTE`` in ``n_steps`` steps.

    Unevenly spaced echoes have no exact period; the grid then spans ``1 / min(dTE)`` and the
    field map is taken as periodic with it (offsets beyond it are not told apart).
    """
    spacing = uniform_spacing_s(te_s)
    period = 1.0 / (spacing if spacing is not None else float(np.min(np.diff(te_s))))
    psi = (np.arange(n_steps) - n_steps // 2) * period / n_steps
    return FieldGrid(psi_hz=psi, period_hz=period)


def _projections(
    te_s: npt.NDArray[np.floating], phasor: npt.NDArray[np.complexfloating], grid: FieldGrid
) -> npt.NDArray[np.float32]:
    """Real form ``(4, 2 * echoes)`` of ``Q^H`` for every (R2*, psi), stacked R2*-major."""
    t = np.asarray(te_s, dtype=np.float64)
    blocks = []
    for r in grid.r2star:
        for psi in grid.psi_hz:
            e = np.exp((-r + 2j * np.pi * psi) * t)
            q = np.linalg.qr(np.stack([e, phasor * e], axis=1))[0].conj().T
            blocks.append(np.block([[q.real, -q.imag], [q.imag, q.real]]))
    return np.concatenate(blocks).astype(np.float32)


def residual_curves(
    signal: npt.NDArray[np.complexfloating],
    te_s: npt.NDArray[np.floating],
    phasor: npt.NDArray[np.complexfloating],
    grid: FieldGrid,
    *,
    threads: int = 2,
) -> tuple[FloatArray, FloatArray]:
    """Least-squares residual at each grid offset, minimised over R2*.

    Parameters
    ----------
    signal : (echoes, V) complex
        Echoes of ``V`` voxels (clockwise convention).
    te_s, phasor : (echoes,)
        Echo times (s) and the fat phasor ``c(t)``.
    threads : int
        Chunks of voxels computed at once.

    Returns
    -------
    cost : (V, n) float32
        Residual energy (signal units squared) at each ``grid.psi_hz``.
    r2star : (V, n) float32
        The R2* of ``grid.r2star`` that gave it.
    """
    n_vox = signal.shape[1]
    proj = _projections(te_s, phasor, grid)
    n_r2, n_psi = len(grid.r2star), grid.n
    planes = np.concatenate([signal.real, signal.imag]).astype(np.float32)
    power = np.einsum("ev,ev->v", planes, planes)
    cost = np.empty((n_vox, n_psi), np.float32)
    best = np.empty((n_vox, n_psi), np.float32)
    r2 = np.asarray(grid.r2star, np.float32)
    step = max(1, _CHUNK_BYTES // (4 * proj.shape[0]))

    def run(a: int) -> None:
        p = proj @ planes[:, a : a + step]
        p *= p
        energy = p.reshape(n_r2, n_psi, 4, -1).sum(axis=2)
        top, r2_best = _parabola_max(energy, r2)
        cost[a : a + step] = (power[None, a : a + step] - top).T
        best[a : a + step] = r2_best.T

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(0, n_vox, step)))
    np.maximum(cost, 0.0, out=cost)
    return cost, best


def _parabola_max(
    energy: npt.NDArray[np.float32], grid: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Maximum over the first axis (an even grid) and where it is, refined by a parabola
    through the best point and its neighbours (the grid's end points stay as they are)."""
    n = energy.shape[0]
    flat = energy.reshape(n, -1)
    k = np.argmax(flat, axis=0)
    if n < 3:
        return flat[k, np.arange(k.size)].reshape(energy.shape[1:]), grid[k].reshape(
            energy.shape[1:])
    cols = np.arange(k.size)
    kc = np.clip(k, 1, n - 2)
    e0, e1, e2 = flat[kc - 1, cols], flat[kc, cols], flat[kc + 1, cols]
    curv = e0 - 2 * e1 + e2
    inner = (k == kc) & (curv < 0)
    shift = np.where(inner, 0.5 * (e0 - e2) / np.where(inner, curv, -1), 0).clip(-0.5, 0.5)
    top = np.where(inner, e1 - 0.25 * (e0 - e2) * shift, flat[k, cols])
    where = grid[k] + shift * (grid[1] - grid[0])
    shape = energy.shape[1:]
    return top.astype(np.float32).reshape(shape), where.astype(np.float32).reshape(shape)


def voxelwise_labels(cost: FloatArray) -> IntArray:
    """Each voxel's lowest residual (the voxel-independent fit), ``cost.shape[:-1]``."""
    return np.argmin(cost, axis=-1)
