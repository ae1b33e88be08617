"""One phantom subject scan, and cohorts of them: the public entry points of the phantom.

Random streams: the subject's anatomy, marrow, lesions, protocol and base position come from
``default_rng([seed, index])``; the scan's repositioning, coil, field map, noise and raters
from ``default_rng([seed, index, scan])``. So scan 2 of a subject has the same anatomy and
marrow as scan 1, seen from a new position with new noise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from vertebrafat.core.errors import InputError
from vertebrafat.core.image import StudyMeta, WaterFatImage
from vertebrafat.core.labels import LEVEL_OF_LABEL
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.core.types import Affine, FloatArray, Labels, Mask, Volume
from vertebrafat.phantom.acquisition import (
    Acquisition,
    draw_protocol,
    scan_affine,
)
from vertebrafat.phantom.marrow import Lesion, Marrow, draw_marrow
from vertebrafat.phantom.raters import annotated_slices, draw_rater
from vertebrafat.phantom.render import Rendered, render
from vertebrafat.phantom.scanner import acquire
from vertebrafat.phantom.skeleton import Anatomy, draw_anatomy
from vertebrafat.phantom.truth import truth_table

GAIN = 1000.0
"""Stored intensity of pure water at coil sensitivity 1 (scanner-like integer scale)."""


@dataclass(frozen=True)
class PhantomConfig:
    """Cohort-level knobs of the phantom.

    Attributes
    ----------
    snr_range : (float, float)
        Uniform range of the per-echo SNR of pure water at coil sensitivity 1.
    p_haemangioma, p_modic1, p_modic2, p_fracture, p_transitional : float
        Per-subject probabilities (0-1) of a haemangioma, Modic type 1/2 endplate change,
        an anterior wedge fracture and a lumbosacral transitional vertebra (half L6, half
        sacralised L5).
    rescan_shift_mm, rescan_rotation_deg : float
        SD of the repositioning of scan 2 (per axis, mm) and of its in-plane tilt (degrees).
    rater_a_offset_mm, rater_b_offset_mm : float
        Where each rater draws relative to the true surface (negative = inside).
    rater_a_anterior_mm, rater_b_anterior_mm : float
        Extra outward offset at the anterior wall (rater B's outline takes in the partial
        volume with prevertebral fat there, hence a B-minus-A BMF bias of about +1 pp).
    rater_jitter_mm : float
        Amplitude of the smooth random wobble of each drawn contour.
    b0_ramp_periods : float
        A linear B0 ramp along the rows (cranio-caudal) rising by this many water-fat shifts
        (434 Hz at 3 T, 217 Hz at 1.5 T) across the field of view, added to the field map of
        the echoes (a test of water-fat separation). It draws no random numbers and touches
        only the echoes, so the maps, truth and raters of every seed stay as they are; 0 (the
        default) adds nothing.
    """

    snr_range: tuple[float, float] = (30.0, 90.0)
    p_haemangioma: float = 0.25
    p_modic1: float = 0.08
    p_modic2: float = 0.12
    p_fracture: float = 0.08
    p_transitional: float = 0.08
    rescan_shift_mm: float = 3.0
    rescan_rotation_deg: float = 3.0
    rater_a_offset_mm: float = -1.6
    rater_a_anterior_mm: float = 0.0
    rater_b_offset_mm: float = -0.2
    rater_b_anterior_mm: float = 1.5
    rater_jitter_mm: float = 0.8
    b0_ramp_periods: float = 0.0


@dataclass(frozen=True)
class PhantomStudy:
    """A phantom scan with its ground truth.

    Attributes
    ----------
    image : WaterFatImage
        Fitted water and fat (scanner units, pure water ~1000 at coil sensitivity 1), FF (%)
        and R2* (1/s), shape ``(slices, rows, cols)``; ``meta.subject`` ``"P001"``-style,
        ``meta.scan`` ``"1"``/``"2"``, ``meta.vendor`` ``"phantom"``.
    labels : Labels
        VerSe truth labels on every slice (T9/T10 16/17 when in the field of view, T11 18,
        T12 19, L1-L5 20-24, L6 25 in transitional subjects, whole sacrum 26).
    rater_a, rater_b : Labels
        The two simulated raters' labels, non-zero only on ``annotated_slices``.
    ribs : Mask
        Rib voxels (thoracic ribs T9-T12 where in view, outside the bodies): the truth of the
        model's rib class, the cue for the last rib-bearing body (T12).
    annotated_slices : tuple of int
        Slice indices the raters drew (5-7 central slices through the bodies).
    truth : tuple of LevelMeasurement
        One row per labelled level, cranio-caudal; FF statistics of ``ff_true`` inside the
        whole label.
    ff_true : Volume
        Noise-free FF map (%), float32, same shape as the image: inside the labelled bodies the
        marrow's own FF (partial volume with cortex, disc or neighbouring fat excluded: that is
        what a measurement must see through), elsewhere the voxel's FF.
    lesions : tuple of Lesion
        Focal findings (haemangioma, Modic 1/2, fracture).
    acquisition : Acquisition
        Protocol and position of this scan.
    anatomy, marrow : Anatomy, Marrow
        The subject's drawn spine and marrow (identical for scans 1 and 2).
    seed, index : int
        Cohort seed and 0-based subject index.
    echoes : ndarray of complex64, shape (echoes, slices, rows, cols), or None
        The simulated complex echoes (scanner units) when asked for.
    field_map_hz : ndarray of float32, shape (slices, rows, cols), or None
        With the echoes: the B0 offset (Hz) they were simulated with (the truth of a field-map
        estimate). Precession as :func:`vertebrafat.phantom.signal.simulate_echoes`: the fat
        peaks below water turn the echoes' phase clockwise (negative frequency).
    r2star_true : Volume or None
        With the echoes: the R2* (1/s) they were simulated with (0 in air).
    """

    image: WaterFatImage
    labels: Labels
    rater_a: Labels
    rater_b: Labels
    ribs: Mask
    annotated_slices: tuple[int, ...]
    truth: tuple[LevelMeasurement, ...]
    ff_true: Volume
    lesions: tuple[Lesion, ...]
    acquisition: Acquisition
    anatomy: Anatomy
    marrow: Marrow
    seed: int = 0
    index: int = 0
    echoes: npt.NDArray[np.complex64] | None = None
    field_map_hz: npt.NDArray[np.float32] | None = None
    r2star_true: Volume | None = None


_ID_PREFIX = re.compile(r"[A-Za-z0-9_.-]{0,32}")

Protocol = tuple[int, float, tuple[int, int], tuple[float, float], float, tuple[float, ...], float]
"""(slices, thickness mm, matrix, fov mm, field T, TEs ms, SNR) as drawn by ``draw_protocol``."""


@dataclass(frozen=True)
class _Subject:
    """Everything drawn from the subject stream ``default_rng([seed, index])``."""

    anatomy: Anatomy
    marrow: Marrow
    lesions: tuple[Lesion, ...]
    protocol: Protocol
    centre_mm: FloatArray
    angle_deg: float
    texture: FloatArray
    n_raters: int
    transitional: str


def subject_id(index: int, *, prefix: str = "") -> str:
    """``P001`` for index 0; ``s7-P001`` with ``prefix="s7-"``.

    Raises
    ------
    InputError
        If ``prefix`` holds anything but letters, digits, ``-``, ``_`` and ``.`` (it becomes
        part of folder names and DICOM patient ids).
    """
    if not _ID_PREFIX.fullmatch(prefix):
        raise InputError(f"phantom: id prefix {prefix!r} may hold only letters, digits, "
                         f"'-', '_' and '.'")
    return f"{prefix}P{index + 1:03d}"


def _draw_subject(rng: np.random.Generator, cfg: PhantomConfig) -> _Subject:
    """Anatomy, marrow, lesions, protocol and base position (the order of draws is fixed)."""
    transitional = ""
    if rng.random() < cfg.p_transitional:
        transitional = "L6" if rng.random() < 0.5 else "sacralised"
    anatomy = draw_anatomy(
        rng, fracture=bool(rng.random() < cfg.p_fracture), transitional=transitional
    )
    marrow, lesions = draw_marrow(
        rng, anatomy, p_haemangioma=cfg.p_haemangioma, p_modic1=cfg.p_modic1, p_modic2=cfg.p_modic2
    )
    protocol = draw_protocol(rng, snr_range=cfg.snr_range)
    l3 = next(v for v in anatomy.vertebrae if v.level == "L3")
    centre = np.array(
        [l3.centre_mm[0] + rng.uniform(-3, 3), rng.uniform(10, 50), rng.uniform(-25, 25)]
    )
    angle = float(rng.uniform(-6.0, 6.0))
    texture = np.column_stack(
        [
            rng.normal(0, 1, (14, 3)) * 2 * np.pi / rng.uniform(15, 45, (14, 1)),
            rng.uniform(0, 2 * np.pi, 14),
        ]
    )
    n_raters = int(rng.integers(5, 8))
    return _Subject(
        anatomy, marrow, lesions, protocol, centre, angle, texture, n_raters, transitional
    )


def _acquisition(
    subj: _Subject, srng: np.random.Generator, cfg: PhantomConfig, scan: int
) -> Acquisition:
    """The protocol at the subject's position, moved and tilted a little for ``scan != 1``."""
    centre, angle = subj.centre_mm, subj.angle_deg
    if scan != 1:
        centre = centre + srng.normal(0, cfg.rescan_shift_mm, 3)
        angle += float(srng.normal(0, cfg.rescan_rotation_deg))
    n_slices, thickness, matrix, fov, field_t, tes, snr = subj.protocol
    return Acquisition(
        n_slices=n_slices,
        slice_thickness_mm=thickness,
        matrix=matrix,
        fov_mm=fov,
        field_strength_t=field_t,
        echo_times_ms=tes,
        snr=snr,
        angle_deg=round(angle, 4),
        centre_mm=(
            round(float(centre[0]), 4),
            round(float(centre[1]), 4),
            round(float(centre[2]), 4),
        ),
    )


def _image(w: Volume, f: Volume, r2: Volume, acq: Acquisition, meta: StudyMeta) -> WaterFatImage:
    """Scanner-scaled, rounded maps (FF to 0.1 %, R2* to 0.1 1/s) as stored on disk."""
    total = w + f
    ff = np.where(total > 0, 100 * f / np.where(total > 0, total, 1), 0.0)
    return WaterFatImage(
        water=np.round(w * GAIN).astype(np.float32),
        fat=np.round(f * GAIN).astype(np.float32),
        ff=np.round(ff, 1).astype(np.float32),
        r2star=np.round(r2, 1).astype(np.float32),
        affine=scan_affine(acq),
        meta=meta,
    )


def _raters(
    tissue: Rendered,
    affine: Affine,
    slices: tuple[int, ...],
    srng: np.random.Generator,
    cfg: PhantomConfig,
) -> tuple[Labels, Labels]:
    """Rater A (tight, inside the cortex) then rater B (looser, includes anterior cortex)."""
    return tuple(  # type: ignore[return-value]
        draw_rater(
            srng,
            tissue.surface_mm,
            tissue.surface_label,
            affine,
            slices,
            offset_mm=offset,
            anterior_mm=anterior,
            jitter_mm=cfg.rater_jitter_mm,
            anterior=tissue.surface_anterior,
        )
        for offset, anterior in (
            (cfg.rater_a_offset_mm, cfg.rater_a_anterior_mm),
            (cfg.rater_b_offset_mm, cfg.rater_b_anterior_mm),
        )
    )


def _truth_flags(anatomy: Anatomy, transitional: str) -> dict[int, tuple[str, ...]]:
    """``transitional`` flag on L5/L6 of an L6 subject and on L5 of a sacralised one."""
    return {
        v.label: ("transitional",)
        for v in anatomy.vertebrae
        if (transitional == "L6" and v.level in ("L5", "L6"))
        or (transitional == "sacralised" and v.level == "L5")
    }


def generate_subject(
    *,
    seed: int,
    index: int,
    scan: int = 1,
    config: PhantomConfig | None = None,
    echoes: bool = False,
    id_prefix: str = "",
) -> PhantomStudy:
    """Simulate scan ``scan`` of subject ``index`` of the cohort ``seed``.

    Parameters
    ----------
    seed : int
        Cohort seed.
    index : int
        0-based subject index (subject id ``P{index + 1:03d}``).
    scan : int
        1 for the first scan; 2 (or more) for a rescan: same anatomy and marrow, moved by
        ~``config.rescan_shift_mm`` and tilted by ~``config.rescan_rotation_deg``, new noise.
    config : PhantomConfig, optional
        Cohort knobs; defaults to ``PhantomConfig()``.
    echoes : bool
        Keep the complex echoes in ``PhantomStudy.echoes``.
    id_prefix : str
        Put before the subject id (``"s7-"`` gives ``s7-P001``), so that cohorts of
        different seeds can be pooled without two subjects sharing an id. The images do not
        depend on it.

    Returns
    -------
    PhantomStudy
        Deterministic: the same arguments give identical arrays. Draws shared between scans
        come from ``default_rng([seed, index])``, per-scan ones from
        ``default_rng([seed, index, scan])``. BLAS runs on one thread here: a threaded
        matrix product splits its sums differently, and the bytes must not depend on the
        machine's thread count.

    Examples
    --------
    >>> study = generate_subject(seed=1, index=0)
    >>> study.image.meta.subject, study.image.channels
    ('P001', ('water', 'fat', 'ff', 'r2star'))
    >>> [row.level for row in study.truth if row.level.startswith("L")]
    ['L1', 'L2', 'L3', 'L4', 'L5']
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _generate(seed, index, scan, config or PhantomConfig(), echoes, id_prefix)


def _generate(
    seed: int, index: int, scan: int, cfg: PhantomConfig, echoes: bool, id_prefix: str
) -> PhantomStudy:
    subj = _draw_subject(np.random.default_rng([seed, index]), cfg)
    srng = np.random.default_rng([seed, index, scan])
    acq = _acquisition(subj, srng, cfg, scan)
    affine = scan_affine(acq)
    shape = (acq.n_slices, *acq.matrix)
    tissue = render(
        subj.anatomy,
        subj.marrow,
        subj.lesions,
        affine=affine,
        shape=shape,
        field_t=acq.field_strength_t,
        texture_waves=subj.texture,
    )
    sig, w, f, r2, fmap = acquire(tissue, subj.anatomy, acq, srng, keep_echoes=echoes,
                                  b0_ramp_periods=cfg.b0_ramp_periods)
    pd = tissue.water_pd + tissue.fat_pd
    ff_voxel = np.where(pd > 1e-6, 100 * tissue.fat_pd / np.where(pd > 1e-6, pd, 1), 0.0)
    body = (tissue.labels > 0) & np.isfinite(tissue.marrow_ff)
    ff_true = np.where(body, 100 * np.nan_to_num(tissue.marrow_ff), ff_voxel).astype(np.float32)
    sid = subject_id(index, prefix=id_prefix)
    meta = StudyMeta(
        source=f"phantom seed {seed} subject {sid} scan {scan}",
        format="phantom",
        vendor="phantom",
        ff_scale=100,
        field_strength_t=acq.field_strength_t,
        subject=sid,
        scan=str(scan),
        notes=(f"SNR {acq.snr}", f"transitional {subj.transitional or 'none'}"),
    )
    slices = annotated_slices(tissue.labels, n=subj.n_raters)
    rater_a, rater_b = _raters(tissue, affine, slices, srng, cfg)
    flags = _truth_flags(subj.anatomy, subj.transitional)
    return PhantomStudy(
        image=_image(w, f, r2, acq, meta),
        labels=tissue.labels,
        rater_a=rater_a,
        rater_b=rater_b,
        ribs=tissue.ribs,
        annotated_slices=slices,
        truth=truth_table(ff_true, tissue.labels, affine, subject=sid, scan=str(scan), flags=flags),
        ff_true=ff_true,
        lesions=subj.lesions,
        acquisition=acq,
        anatomy=subj.anatomy,
        marrow=subj.marrow,
        seed=seed,
        index=index,
        echoes=None if sig is None else (sig * np.complex64(GAIN)).astype(np.complex64),
        field_map_hz=None if sig is None else np.broadcast_to(fmap, shape).astype(np.float32),
        r2star_true=None if sig is None else np.asarray(tissue.r2star, np.float32),
    )


def generate_cohort(
    *,
    n_subjects: int,
    seed: int,
    rescans: bool = False,
    config: PhantomConfig | None = None,
    echoes: bool = False,
    first_index: int = 0,
    id_prefix: str = "",
) -> Iterator[PhantomStudy]:
    """Subjects ``first_index .. first_index + n_subjects - 1`` (each followed by its scan 2
    when ``rescans``), generated lazily; ``id_prefix`` as in :func:`generate_subject`."""
    for index in range(first_index, first_index + n_subjects):
        for scan in (1, 2) if rescans else (1,):
            yield generate_subject(seed=seed, index=index, scan=scan, config=config, echoes=echoes,
                                   id_prefix=id_prefix)


__all__ = [
    "GAIN",
    "LEVEL_OF_LABEL",
    "PhantomConfig",
    "PhantomStudy",
    "generate_cohort",
    "generate_subject",
    "subject_id",
]
