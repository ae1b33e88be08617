"""Vertebral-body segmentation with an ONNX model: pure arrays in, probability and mask out.

The steps, each a public function so training uses exactly the same preprocessing:
:func:`canonical_axes` (in-plane orientation from the affine: rows head -> feet, columns
anterior -> posterior), :func:`model_planes` (channel normalisation stated in the model card),
:func:`resample_linear` (in-plane to the model pixel spacing and back; :func:`model_shape`
moves the matrix to a multiple of 16 when that changes it by 3 % at most), padding to a multiple
of 16 otherwise, the network, then :func:`postprocess` (remove specks, fill holes per slice).
Never imports torch; the ONNX Runtime session is opened by
:func:`vertebrafat.segmentation.model.open_session`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

from vertebrafat.core.boxes import plane_box
from vertebrafat.core.errors import GeometryError, ModelError
from vertebrafat.core.image import WaterFatImage, spacing_from_affine
from vertebrafat.core.model_card import CHANNELS, ModelCard
from vertebrafat.core.quantiles import positive_percentile
from vertebrafat.core.types import Affine, Mask, Volume
from vertebrafat.segmentation.model import SegmentationModel, Session

# largest relative change of the model's matrix (and so of its pixel spacing) that
# :func:`model_shape` accepts to avoid padding to a multiple of the network's divisor
SNAP_TOLERANCE = 0.03


@dataclass(frozen=True)
class Segmentation:
    """Result of :func:`predict`, on the input image's voxel grid ``(slices, rows, cols)``.

    ``probability`` is float32 0-1 for vertebral body; ``mask`` the post-processed binary body
    mask; ``sacrum`` the sacrum mask when the model has a sacrum class, else ``None``; ``ribs``
    the rib mask (argmax, no clean-up: rib cuts are small) when it has a rib class and the study
    has a fat or FF image: on water alone rib heads are faint, and the shipped model's rib class
    then missed T12's ribs on phantom subjects and put ribs on both sides of a real L1 (myo44),
    either of which would shift every name by one. There the rib class is ``water_ribs``
    instead: the labeller names with it only where the body below its T12 bears no rib and the
    count can reveal an L6 but not lose a lumbar body; elsewhere it is a check that can make a
    naming uncertain.
    """

    probability: Volume
    mask: Mask
    sacrum: Mask | None = None
    ribs: Mask | None = None
    water_ribs: Mask | None = None


def canonical_axes(affine: Affine) -> tuple[bool, bool, bool]:
    """In-plane reorientation ``(transpose, flip_rows, flip_cols)`` to the canonical slice.

    Canonical: slices along array axis 0 (sagittal), rows running head -> feet, columns
    anterior -> posterior, as MyoSegmenTUM. Apply with :func:`to_canonical`.

    Raises
    ------
    GeometryError
        If array axis 0 is not the left-right axis (the model is for sagittal slices).
    """
    direction = np.asarray(affine, dtype=np.float64)[:3, :3]
    direction = direction / np.linalg.norm(direction, axis=0)
    if abs(direction[0, 0]) < max(abs(direction[0, 1]), abs(direction[0, 2])):
        raise GeometryError(
            f"slices are not sagittal: slice direction {np.round(direction[:, 0], 3).tolist()}"
        )
    transpose = abs(direction[2, 2]) > abs(direction[2, 1])
    rows, cols = (direction[:, 2], direction[:, 1]) if transpose else direction[:, 1:].T
    return bool(transpose), bool(rows[2] > 0), bool(cols[1] > 0)


def to_canonical(volume: npt.NDArray[Any], axes: tuple[bool, bool, bool]) -> npt.NDArray[Any]:
    """Reorient ``(slices, rows, cols)`` with :func:`canonical_axes`' answer (a view)."""
    transpose, flip_rows, flip_cols = axes
    out = np.swapaxes(volume, -1, -2) if transpose else volume
    if flip_rows:
        out = out[..., ::-1, :]
    if flip_cols:
        out = out[..., :, ::-1]
    return out


def canonical_plane_shape(
    shape: tuple[int, ...], axes: tuple[bool, bool, bool]
) -> tuple[int, int]:
    """(rows, cols) of a slice of a ``(slices, rows, cols)`` volume after :func:`to_canonical`."""
    rows, cols = int(shape[-2]), int(shape[-1])
    return (cols, rows) if axes[0] else (rows, cols)


def from_canonical(volume: npt.NDArray[Any], axes: tuple[bool, bool, bool]) -> npt.NDArray[Any]:
    """Inverse of :func:`to_canonical`."""
    transpose, flip_rows, flip_cols = axes
    out = volume[..., :, ::-1] if flip_cols else volume
    if flip_rows:
        out = out[..., ::-1, :]
    return np.swapaxes(out, -1, -2) if transpose else out


def canonical_spacing_mm(affine: Affine, axes: tuple[bool, bool, bool]) -> tuple[float, float]:
    """In-plane pixel spacing (rows, cols) in mm of the canonical slice."""
    _, s_rows, s_cols = spacing_from_affine(affine)
    return (s_cols, s_rows) if axes[0] else (s_rows, s_cols)


def present_channels(image: WaterFatImage) -> tuple[str, ...]:
    """Channels the image really has; an all-zero or non-finite water image counts as missing."""
    have = []
    for name in CHANNELS:
        arr = getattr(image, name)
        if arr is None:
            continue
        if name == "water" and not (np.isfinite(arr).all() and np.any(arr != 0)):
            continue
        have.append(name)
    return tuple(have)


def model_planes(image: WaterFatImage, card: ModelCard) -> Volume:
    """Normalised network input ``(planes, slices, rows, cols)`` float32 on the image grid.

    water and fat are divided by the ``water_percentile`` of their non-zero voxels, ff (%) by
    ``ff_divisor``, r2star (1/s) by ``r2star_divisor_per_s``; a missing optional channel is zeros
    with a zero presence plane. Non-finite values become 0.

    Raises
    ------
    ModelError
        If the image lacks a channel the model requires.
    """
    planes = np.zeros((card.n_planes, *image.shape), dtype=np.float32)
    for i, plane in enumerate(plane_stream(image, card)):
        planes[i] = plane
    return planes


def plane_stream(image: WaterFatImage, card: ModelCard) -> Iterator[Volume | float]:
    """The planes of :func:`model_planes` one at a time, in order: a float32 volume, or the
    value of a plane that is constant by construction (a missing channel, a presence plane).
    :func:`canonical_input` resamples them as they come, so the 37 MB of all planes of a
    20-slice study are never held together (fresh memory costs page faults: 0.1 s of
    system time in a cold ``segment``)."""
    have = present_channels(image)
    missing = [c for c in card.required_channels if c not in have]
    if missing:
        raise ModelError(
            f"model {card.name} needs channel(s) {', '.join(missing)} but study "
            f"{image.meta.source or '(in memory)'} has only {', '.join(have) or 'none'}"
        )
    base: Volume | None = None  # the context planes are taken from the first channel's plane
    for i, name in enumerate(card.channels):
        plane = _normalise(getattr(image, name), name, card) if name in have else None
        if i == 0:
            base = plane
        yield 0.0 if plane is None else plane
    for distance in card.context_mm:
        if base is None:  # the first channel missing: its plane is zeros
            base = np.zeros(image.shape, dtype=np.float32)
        offset = distance / image.spacing_mm[0]
        left, right = shifted_slices(base, -offset), shifted_slices(base, offset)
        yield np.asarray(0.5 * (left + right), dtype=np.float32)
        yield np.asarray(np.abs(left - right), dtype=np.float32)
    for name in card.optional_channels:
        yield 1.0 if name in have else 0.0


def shifted_slices(volume: Volume, offset: float) -> Volume:
    """``volume`` sampled at slice ``i + offset`` for every slice ``i`` (linear along axis 0,
    edge slices repeated beyond the ends)."""
    n = volume.shape[0]
    pos = np.clip(np.arange(n) + offset, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).astype(np.float32)[:, None, None]
    return ((1 - w) * volume[lo] + w * volume[hi]).astype(np.float32)


def _normalise(arr: Volume, name: str, card: ModelCard) -> Volume:
    # a new float32 array, changed in place from here on (the same values as new arrays)
    x = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if name in ("water", "fat"):
        found = positive_percentile(x, card.water_percentile)
        scale = 0.0 if found is None else float(found)
        if scale <= 0:
            return np.zeros_like(x)
        return np.divide(x, scale, out=x)
    if name == "ff":
        return np.clip(np.divide(x, card.ff_divisor, out=x), -0.5, 1.5, out=x)
    return np.clip(np.divide(x, card.r2star_divisor_per_s, out=x), 0.0, 5.0, out=x)


def _taps(
    n_in: int, n_out: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Linear-interpolation taps (lo, hi, weight of hi), pixel centres aligned, edge-clamped."""
    centres = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    lo = np.floor(centres).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (centres - lo).astype(np.float32)


def linear_matrix(n_in: int, n_out: int) -> npt.NDArray[np.float32]:
    """``(n_out, n_in)`` matrix of the interpolation :func:`resample_linear` does per axis."""
    lo, hi, w = _taps(n_in, n_out)
    m = np.zeros((n_out, n_in), dtype=np.float32)
    np.add.at(m, (np.arange(n_out), lo), 1 - w)
    np.add.at(m, (np.arange(n_out), hi), w)
    return m


# held while BLAS is limited to one thread (:func:`resample_linear`)
_ONE_BLAS_THREAD = threading.Lock()


@lru_cache(maxsize=1)
def _blas_libraries() -> ThreadpoolController:
    """The thread pools of the libraries loaded now (numpy's BLAS among them), found once:
    ``threadpool_limits`` looks them up again on every call, resolving the path of every loaded
    library (0.5-2 ms a call; in a cold ``segment`` each of its hundreds of ``lstat`` calls
    gives up the GIL to the import thread, and its five calls took 0.05 s in a profile)."""
    return ThreadpoolController()

# output rows (or columns) per matrix product in :func:`resample_linear`: each product spans
# only the input rows its taps reach (~36 of 256 for 32 rows at 256 -> 288), not all of them
RESAMPLE_BLOCK = 32


def resample_linear(volume: npt.NDArray[np.float32], shape: tuple[int, int]) -> Volume:
    """Resize the last two axes of ``(..., rows, cols)`` to ``shape`` by separable linear
    interpolation (two taps per axis, no anti-aliasing). Same shape in, same values out.

    Applied as the matrices of :func:`linear_matrix` (``R @ x @ C.T``), block by block: each
    product takes :data:`RESAMPLE_BLOCK` output rows (columns) and only the band of input rows
    (columns) their taps reach, so the zeros outside the band cost nothing (20 planes of
    256^2 -> 288^2: 1.6 GFLOP dense, 0.18 banded). A matrix product is several times
    faster than gathering the taps in numpy; its float32 sums round like the dense product's
    to within one unit in the last place. BLAS runs on one thread here: a threaded BLAS
    rounds a few voxels' last bit differently (the bytes would depend on the machine's core
    count and on whether Dask started the process), and its spinning threads, sharing two
    cores with ONNX Runtime and the import thread of ``segment``, made 0.1 s take up to 2.4 s
    under load.
    """
    out = np.asarray(volume, dtype=np.float32)
    # the limit is process-wide and restored on exit: threads take turns, or one thread's exit
    # would give another's product back its BLAS threads
    with _ONE_BLAS_THREAD, _blas_libraries().limit(limits=1, user_api="blas"):
        if out.shape[-2] != shape[0]:
            out = _banded_rows(out, shape[0])
        if out.shape[-1] != shape[1]:
            out = _banded_cols(out, shape[1])
    return np.ascontiguousarray(out, dtype=np.float32)


def _bands(n_in: int, n_out: int) -> list[tuple[slice, slice]]:
    """(output block, input band) pairs covering ``n_out``: the band is every input index a
    block's taps use (:func:`_taps` is monotonic, so first ``lo`` to last ``hi``)."""
    lo, hi, _ = _taps(n_in, n_out)
    return [(slice(i, min(i + RESAMPLE_BLOCK, n_out)),
             slice(int(lo[i]), int(hi[min(i + RESAMPLE_BLOCK, n_out) - 1]) + 1))
            for i in range(0, n_out, RESAMPLE_BLOCK)]


def _banded_rows(x: npt.NDArray[np.float32], n_out: int) -> Volume:
    """``linear_matrix(rows, n_out) @ x`` over axis -2, one band of rows at a time."""
    m = linear_matrix(x.shape[-2], n_out)
    out = np.empty((*x.shape[:-2], n_out, x.shape[-1]), dtype=np.float32)
    for rows, band in _bands(x.shape[-2], n_out):
        out[..., rows, :] = np.matmul(m[rows, band], x[..., band, :])
    return out


def _banded_cols(x: npt.NDArray[np.float32], n_out: int) -> Volume:
    """``x @ linear_matrix(cols, n_out).T`` over axis -1, one band of columns at a time."""
    mt = linear_matrix(x.shape[-1], n_out).T
    flat = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty((flat.shape[0], n_out), dtype=np.float32)
    for cols, band in _bands(x.shape[-1], n_out):
        out[:, cols] = np.matmul(flat[:, band], mt[band, cols])
    return out.reshape(*x.shape[:-1], n_out)


def model_shape(
    shape: tuple[int, int],
    spacing_mm: tuple[float, float],
    target_mm: float,
    *,
    divisor: int = 1,
    tolerance: float = SNAP_TOLERANCE,
) -> tuple[int, int]:
    """In-plane matrix at the model spacing: ``n = round(n_in * spacing / target)``, at least 1,
    moved to the nearest multiple of ``divisor`` when that changes ``n`` by at most
    ``tolerance`` (a fraction of ``n``).

    The network needs multiples of ``divisor``; padding 290 to 304 would cost 10 % more
    inference than resampling to 288 at 1.26 mm instead of 1.25 mm, a pixel-size change far
    inside the training's scale augmentation (0.9-1.15).
    """
    out = []
    for n_in, s in zip(shape, spacing_mm, strict=True):
        n = max(1, round(n_in * s / target_mm))
        snapped = divisor * round(n / divisor)
        out.append(snapped if snapped >= divisor and abs(snapped - n) <= tolerance * n else n)
    return out[0], out[1]


def pad_width(n: int, divisor: int) -> tuple[int, int]:
    """Zero padding (before, after) that brings ``n`` to a multiple of ``divisor``."""
    extra = (-n) % divisor
    return extra // 2, extra - extra // 2


def canonical_input(
    image: WaterFatImage, card: ModelCard
) -> tuple[Volume, tuple[bool, bool, bool]]:
    """Normalised, reoriented, resampled network input ``(slices, planes, rows, cols)``.

    Not yet padded; returns the reorientation so the output can be mapped back.
    """
    axes = canonical_axes(image.affine)
    spacing = canonical_spacing_mm(image.affine, axes)
    shape = model_shape(canonical_plane_shape(image.shape, axes), spacing, card.pixel_spacing_mm,
                        divisor=card.divisor)
    # presence planes and missing channels are constant: filled, not interpolated (a water-only
    # study has one varying plane of seven)
    # (slices, planes, rows, cols) from the start: no 46 MB transposing copy for 20 slices
    x = np.empty((image.shape[0], card.n_planes, *shape), dtype=np.float32)
    for i, given in enumerate(plane_stream(image, card)):
        if isinstance(given, float):
            x[:, i] = given
            continue
        plane = to_canonical(given, axes)
        value = plane.flat[0] if plane.size else 0.0
        if np.all(plane == value):
            x[:, i] = value
        else:
            x[:, i] = resample_linear(np.ascontiguousarray(plane), shape)
    return x, axes


def run_network(
    session: Session, x: Volume, *, divisor: int, batch: int = 1,
    on_start: Callable[[], object] | None = None,
) -> Volume:
    """Logits ``(slices, classes, rows, cols)`` for ``x`` ``(slices, planes, rows, cols)``,
    zero-padded to multiples of ``divisor`` on the way in and cropped on the way out. Small
    batches keep the activations in cache: with the session's threads not spinning, one slice
    a run is 10 % faster than 2 and 20 % faster than 4 or 20 on 2 cores (the logits are the
    same bit for bit whatever the batch). ``on_start`` is called once, just before the first
    run (see :func:`predict`)."""
    (r0, r1), (c0, c1) = pad_width(x.shape[2], divisor), pad_width(x.shape[3], divisor)
    padded = r0 or r1 or c0 or c1
    xp = np.pad(x, ((0, 0), (0, 0), (r0, r1), (c0, c1))) if padded \
        else np.ascontiguousarray(x, dtype=np.float32)  # np.pad copies even with no padding
    if on_start is not None:
        on_start()
    y: Volume | None = None  # filled run by run: no list of outputs to concatenate (26 MB)
    for i in range(0, xp.shape[0], batch):
        out = session.run(None, {"x": xp[i : i + batch]})[0]
        if y is None:
            y = np.empty((xp.shape[0], *np.shape(out)[1:]), dtype=np.float32)
        y[i : i + batch] = out
    if y is None:
        raise ModelError("no slices to run the network on")
    return y[:, :, r0 : y.shape[2] - r1, c0 : y.shape[3] - c1]


def class_probabilities(logits: Volume, *, in_place: bool = False) -> Volume:
    """Sigmoid (one channel) or softmax over axis 1 of ``(slices, classes, rows, cols)``;
    ``in_place``: the softmax overwrites ``logits`` (float32) instead of a new array."""
    if logits.shape[1] == 1:
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32, copy=False)
    peak = logits.max(axis=1, keepdims=True)
    e = np.subtract(logits, peak, out=logits) if in_place \
        else np.subtract(logits, peak, dtype=np.float32)
    np.exp(e, out=e)  # in place: one 4-class array instead of three
    return np.divide(e, e.sum(axis=1, keepdims=True), out=e)


def postprocess(mask: Mask, *, voxel_ml: float, min_component_ml: float) -> Mask:
    """Remove 3D components (26-connected) smaller than ``min_component_ml`` and fill holes in
    each slice. ``mask`` is ``(slices, rows, cols)``; an empty mask stays empty."""
    # imported here, not with the module: scipy.ndimage takes 0.2-0.4 s to import, and
    # ``vertebrafat segment`` imports it on a thread while the network runs (see cli.segment)
    from scipy import ndimage

    given: Mask = np.asarray(mask, dtype=bool)
    out = np.zeros(given.shape, dtype=bool)
    # every component lies inside the in-plane box of all slices together: labelled there,
    # the same components at a fraction of the cost (a spine fills 30-50 % of the plane)
    inside = plane_box(np.logical_or.reduce(given, axis=0))
    if inside is None:
        return out
    sub = given[:, inside[0], inside[1]]
    labelled, n = ndimage.label(sub, structure=np.ones((3, 3, 3), dtype=bool))
    if n:
        sizes = np.bincount(labelled.ravel())[1:] * voxel_ml
        keep = np.concatenate([[False], sizes >= min_component_ml])
        sub = keep[labelled]
    filled = out[:, inside[0], inside[1]]  # a view: filled in place
    for i in range(sub.shape[0]):
        # filled inside the slice's bounding box: the background outside it reaches the image
        # border, as the box's own border does in the fill, so the same pixels, faster
        box = plane_box(sub[i])
        if box is not None:
            filled[i][box] = ndimage.binary_fill_holes(sub[i][box])
    return out


def first_argmax(probs: Volume) -> npt.NDArray[np.int8]:
    """``np.argmax(probs, axis=0)`` for NaN-free ``(classes, ...)`` with at most 127 classes,
    as int8: the first class holding the maximum. One pass over each class instead of argmax's
    strided walk across the classes of every voxel (15 against 3 ms for 4 x 20 x 256^2)."""
    best = np.zeros(probs.shape[1:], dtype=np.int8)
    top = probs[0].copy()
    above = np.empty(best.shape, dtype=bool)
    for k in range(1, probs.shape[0]):
        np.greater(probs[k], top, out=above)  # strictly: a tie keeps the earlier class
        np.copyto(best, np.int8(k), where=above)
        np.maximum(top, probs[k], out=top)
    return best


def predict(
    model: SegmentationModel, image: WaterFatImage, *,
    on_network_start: Callable[[], object] | None = None,
) -> Segmentation:
    """Segment the vertebral bodies of ``image``.

    Works for any slice count and in-plane matrix, any in-plane orientation (taken from the
    affine), and any pixel spacing (resampled to the model's and back, linear for
    probabilities). Multi-class models give ``mask``, ``sacrum`` and ``ribs`` by argmax; a sigmoid
    model thresholds at the card's ``threshold``. Both are post-processed (:func:`postprocess`).
    ``on_network_start`` is called once, when the input is ready and the network about to run:
    ONNX Runtime releases the GIL, so work started there on a thread (``segment`` starts its
    imports of scipy and the later stages) overlaps the network instead of the preprocessing.

    Raises
    ------
    ModelError
        If the study lacks a channel the model requires.
    GeometryError
        If the slices are not sagittal.

    Examples
    --------
    >>> import vertebrafat as vf
    >>> study = vf.generate_subject(seed=1, index=0)
    >>> seg = predict(vf.load_model(), study.image)
    >>> seg.mask.shape == study.image.shape, seg.probability.dtype
    (True, dtype('float32'))
    """
    card = model.card
    x, axes = canonical_input(image, card)
    logits = run_network(model.session, x, divisor=card.divisor, on_start=on_network_start)
    del x  # 46 MB of a 20-slice study, free for the arrays that follow
    probs = class_probabilities(logits, in_place=True)  # logits are ours: no 26 MB copy
    probs = resample_linear(probs, canonical_plane_shape(image.shape, axes))
    probs = np.moveaxis(from_canonical(probs, axes), 1, 0)  # (classes, slices, rows, cols)
    voxel_ml = float(np.prod(image.spacing_mm)) / 1000.0
    body_index = 0 if probs.shape[0] == 1 else card.classes.index("vertebral_body")
    probability = np.ascontiguousarray(np.clip(probs[body_index], 0, 1), dtype=np.float32)
    best = None if probs.shape[0] == 1 else first_argmax(probs)
    winner = probability >= card.threshold if best is None else best == body_index
    keep = {"voxel_ml": voxel_ml, "min_component_ml": card.min_component_ml}
    mask = postprocess(winner, **keep)
    sacrum = ribs = None
    if best is not None:
        if "sacrum" in card.classes:
            sacrum = postprocess(best == card.classes.index("sacrum"), **keep)
        if "rib" in card.classes:
            ribs = best == card.classes.index("rib")
        if image.fat is None and image.ff is None:  # rib class on water alone: a check only
            return Segmentation(probability, mask, sacrum, None, ribs)
    return Segmentation(probability=probability, mask=mask, sacrum=sacrum, ribs=ribs)
