"""A smooth field map from residual curves: region growing, graph-cut jump moves, ICM.

The energy of a labelling ``l`` (an index into the B0 grid per coarse cell) is::

    E(l) = sum_v D_v(l_v) + lambda * sum_(u,v) w_uv (1 - cos(2 pi (l_u - l_v) / n))

``D_v`` is the cell's residual curve less its minimum (signal energy units), the pairs are
6-neighbours, ``w_uv`` the smaller signal energy of the two cells (noise follows its
neighbours; both terms scale with the signal) and the periodic penalty is quadratic for small
steps and saturates across real edges. It is minimised in three steps:

1. **Safest-first region growing** (:func:`grow`): each connected region of signal is seeded
   at its most reliable cell (where its residual curve has one clear minimum: water and fat
   mixed) with that cell's own minimum; the assigned set grows through cells in decreasing
   order of reliability, each taking the label that minimises its data term plus the
   smoothness towards its assigned neighbours.
2. **Jump moves** (:func:`jump_moves`, after Hernando et al. 2010, Magn Reson Med 63:79): for
   a shift ``d`` (the water-fat shift, either way), every cell may keep its label or jump to
   the residual minimum nearest ``l_v + d``; the best such move over the whole image is one
   minimum cut (``scipy.sparse.csgraph.maximum_flow``), which moves a whole region that the
   growing put on the wrong branch (a pure-water organ reached through a wall of fat).
   Pairs where the move is not submodular (neighbours already a quarter period apart) are
   truncated, as usual.
3. **Iterated conditional modes** (:func:`icm`), red-black, to settle single cells.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
_FLOW_SCALE = 2.0e8
"""The total capacity the graph's float capacities are scaled to before rounding to int32."""


def neighbours(energy: FloatArray) -> tuple[IntArray, FloatArray]:
    """6-neighbour table of a ``(slices, rows, cols)`` grid: indices ``(V, 6)`` (-1 where
    none) and weights ``min(e_u, e_v)`` (0 where none)."""
    shape = energy.shape
    idx = np.arange(energy.size).reshape(shape)
    e = energy.ravel()
    nb = np.full((energy.size, 6), -1, dtype=np.int64)
    k = 0
    for axis in range(3):
        for step in (1, -1):
            src = [slice(None)] * 3
            dst = [slice(None)] * 3
            n = shape[axis]
            src[axis] = slice(max(step, 0), n + min(step, 0))  # neighbour
            dst[axis] = slice(max(-step, 0), n + min(-step, 0))  # cell
            nb[idx[tuple(dst)].ravel(), k] = idx[tuple(src)].ravel()
            k += 1
    w = np.where(nb >= 0, np.minimum(e[:, None], e[nb]), 0).astype(np.float32)
    return nb, w


def energy_of(
    labels: IntArray, data: FloatArray, nb: IntArray, w: FloatArray, smoothness: float
) -> float:
    """``E(l)`` of the module docstring (each pair counted once)."""
    n = data.shape[1]
    flat = labels.ravel()
    unary = float(np.take_along_axis(data, flat[:, None], axis=1).sum())
    diff = 2 * np.pi * (flat[:, None] - flat[nb]) / n
    pair = float(np.sum(w * (1 - np.cos(diff)))) / 2
    return unary + smoothness * pair


def grow(
    data: FloatArray,
    energy: FloatArray,
    nb: IntArray,
    w: FloatArray,
    *,
    smoothness: float,
    signal_fraction: float = 0.02,
    n_levels: int = 24,
) -> IntArray:
    """Safest-first region growing (step 1 of the module docstring); flat labels ``(V,)``.

    Reliability of a cell: the rise of its residual from its best label to the best label at
    least a sixth of a period away; 0 outside the signal (energy below ``signal_fraction``
    of the 99th percentile). The growth passes ``n_levels`` decreasing reliability
    thresholds, then takes the rest.
    """
    n_cells, n = data.shape
    best = np.argmin(data, axis=1)
    dist = np.abs((np.arange(n)[None] - best[:, None] + n // 2) % n - n // 2)
    far = np.where(dist >= max(1, n // 6), data, np.inf).min(axis=1)
    e = energy.ravel()
    signal = e > signal_fraction * float(np.percentile(e, 99))
    reliability = np.where(signal, far, 0.0)
    regions, n_regions = ndi.label(signal.reshape(energy.shape))
    labels = np.full(n_cells, -1, dtype=np.int64)
    seeds = (
        [int(np.ravel_multi_index(p, energy.shape)) for p in ndi.maximum_position(
            reliability.reshape(energy.shape), regions, range(1, n_regions + 1))]
        if n_regions else [int(np.argmax(e))]
    )
    labels[seeds] = best[seeds]
    phasors = np.exp(2j * np.pi * np.arange(n) / n)
    positive = reliability[reliability > 0]
    levels = list(np.quantile(positive, np.linspace(1, 0, n_levels))) if positive.size else []
    pending = np.zeros(n_cells + 1, dtype=bool)  # the last entry absorbs the -1 neighbours
    pending[nb[seeds].ravel()] = True
    pending[seeds] = False
    for threshold in [*levels, -1.0]:
        ready = reliability >= threshold
        while True:
            front = np.flatnonzero(pending[:-1] & ready)
            if front.size == 0:
                break
            nbf = nb[front]
            known = (nbf >= 0) & (labels[nbf] >= 0)
            wf = np.where(known, w[front], 0)
            near = np.sum(wf * phasors[labels[nbf]], axis=1)
            total = wf.sum(axis=1)
            cost = data[front] + smoothness * (
                total[:, None] - (np.conj(phasors)[None] * near[:, None]).real
            )
            labels[front] = np.argmin(cost, axis=1)
            pending[front] = False
            fresh = nbf[nbf >= 0]
            pending[fresh[labels[fresh] < 0]] = True
    return labels


def icm(
    data: FloatArray,
    labels: IntArray,
    nb: IntArray,
    w: FloatArray,
    parity: npt.NDArray[np.bool_],
    *,
    smoothness: float,
    sweeps: int = 8,
) -> IntArray:
    """Red-black iterated conditional modes (step 3); flat labels ``(V,)``."""
    n = data.shape[1]
    phasors = np.exp(2j * np.pi * np.arange(n) / n).astype(np.complex64)
    total = w.sum(axis=1)
    labels = labels.copy()
    for _ in range(sweeps):
        changed = 0
        for colour in (False, True):
            sel = np.flatnonzero(parity == colour)
            near = np.sum(w[sel] * phasors[labels[nb[sel]]], axis=1)
            cost = data[sel] + smoothness * (
                total[sel, None] - (np.conj(phasors)[None] * near[:, None]).real
            )
            new = np.argmin(cost, axis=1)
            changed += int(np.count_nonzero(new != labels[sel]))
            labels[sel] = new
        if changed == 0:
            break
    return labels


def jump_moves(
    data: FloatArray,
    labels: IntArray,
    nb: IntArray,
    w: FloatArray,
    *,
    shifts: tuple[int, ...],
    smoothness: float,
    window: int,
    rounds: int = 3,
) -> IntArray:
    """Graph-cut jump moves (step 2); flat labels ``(V,)``.

    Each move: a cell keeps its label or takes the best label within ``window`` of
    ``l_v + shift``; the move is kept when it lowers the energy. Up to ``rounds`` passes
    over ``shifts``.
    """
    n_cells, n = data.shape
    mask = nb >= 0
    a = np.repeat(np.arange(n_cells), 6)[mask.ravel()]
    b = nb[mask]
    wab = smoothness * w[mask]
    keep = (a < b) & (wab > 0)
    a, b, wab = a[keep], b[keep], wab[keep]
    current = energy_of(labels, data, nb, w, smoothness)
    for _ in range(rounds):
        moved = False
        for shift in shifts:
            proposal = _nearest_minimum(data, (labels + shift) % n, window)
            x = _best_move(data, labels, proposal, a, b, wab, n)
            if not x.any():
                continue
            trial = np.where(x, proposal, labels)
            e = energy_of(trial, data, nb, w, smoothness)
            if e < current * (1 - 1e-6):
                labels, current, moved = trial, e, True
        if not moved:
            break
    return labels


def _nearest_minimum(data: FloatArray, centre: IntArray, window: int) -> IntArray:
    """Per cell, the label within ``centre +- window`` (periodic) of least data cost."""
    n = data.shape[1]
    idx = (centre[:, None] + np.arange(-window, window + 1)[None]) % n
    pick = np.argmin(np.take_along_axis(data, idx, axis=1), axis=1)
    return idx[np.arange(idx.shape[0]), pick]


def _best_move(
    data: FloatArray,
    labels: IntArray,
    proposal: IntArray,
    a: IntArray,
    b: IntArray,
    wab: FloatArray,
    n: int,
) -> npt.NDArray[np.bool_]:
    """The binary move (keep 0 / jump 1) of least energy, by one minimum cut."""
    n_cells = labels.size
    rows = np.arange(n_cells)
    unary = data[rows, proposal] - data[rows, labels]

    def v(p: IntArray, q: IntArray) -> FloatArray:
        return wab * (1 - np.cos(2 * np.pi * (p - q) / n))

    e00, e01 = v(labels[a], labels[b]), v(labels[a], proposal[b])
    e10, e11 = v(proposal[a], labels[b]), v(proposal[a], proposal[b])
    linear = unary.astype(np.float64)
    np.add.at(linear, a, e10 - e00)
    np.add.at(linear, b, e11 - e10)
    pair = np.maximum(e01 + e10 - e00 - e11, 0)
    src, snk = n_cells, n_cells + 1
    pos = linear > 0
    scale = _FLOW_SCALE / max(float(np.abs(linear).sum() + pair.sum()), 1e-30)
    rows_ = np.concatenate([np.full(int(pos.sum()), src), rows[~pos], a])
    cols_ = np.concatenate([rows[pos], np.full(int((~pos).sum()), snk), b])
    caps = np.concatenate([linear[pos], -linear[~pos], pair]) * scale
    caps = np.round(caps).astype(np.int32)
    good = caps > 0
    graph = csr_matrix((caps[good], (rows_[good], cols_[good])), shape=(n_cells + 2,) * 2)
    flow = maximum_flow(graph, src, snk, method="dinic").flow
    residual = (graph - flow).tocsr()
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    reached = breadth_first_order(residual, src, directed=True, return_predecessors=False)
    x = np.ones(n_cells + 2, dtype=bool)
    x[reached] = False
    return x[:n_cells]
