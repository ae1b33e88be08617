"""Sampling the phantom's anatomy on a scan grid, with partial volume.

The body around the spine (skin, fat, muscles, abdomen, canal) is evaluated at each slice
centre with soft edges one pixel wide; the spine (bodies, discs, posterior elements) is
evaluated on three sub-slices per slice thickness and averaged, so thick-slice partial volume
looks like a real sagittal acquisition. Output: proton-density water and fat maps, R2*, the
VerSe labels (a voxel belongs to a body when at least half of it does), the bodies' own
marrow FF (the truth BMF is measured on it, so that partial volume with disc, cortex or
surrounding fat is the measurement's error, not part of the truth) and, for the raters, each
voxel's signed distance (mm) to the nearest body surface on the slice-centre plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vertebrafat.core.types import Affine, RealArray
from vertebrafat.phantom.acquisition import plane_coordinates, slice_positions
from vertebrafat.phantom.marrow import Lesion, Marrow
from vertebrafat.phantom.skeleton import Anatomy
from vertebrafat.phantom.spine import (
    Plane,
    paint_bodies,
    paint_discs,
    paint_posterior,
    paint_ribs,
    rib_tubes,
)
from vertebrafat.phantom.tissue import Canvas, abdomen_texture, paint, ramp, tissue

N_SUB = 3


@dataclass(frozen=True)
class Rendered:
    """Tissue maps on the scan grid, each ``(slices, rows, cols)``.

    ``water_pd`` and ``fat_pd`` are proton densities (pure water = 1); ``r2star`` in 1/s;
    ``labels`` VerSe uint8; ``ribs`` bool (rib voxels outside the bodies); ``marrow_ff`` the
    body marrow's FF field (fraction) averaged over the part of each voxel inside a body (NaN
    outside bodies); ``surface_mm`` signed distance
    to the nearest body surface (negative inside) at the slice centre, ``surface_label`` the
    label of that body and ``surface_anterior`` the body-local AP position there (-1 posterior
    wall .. 1 anterior).
    """

    water_pd: RealArray
    fat_pd: RealArray
    r2star: RealArray
    labels: np.ndarray
    ribs: np.ndarray
    marrow_ff: RealArray
    surface_mm: RealArray
    surface_label: np.ndarray
    surface_anterior: RealArray


def _centreline(anatomy: Anatomy, y: RealArray, z: RealArray) -> dict[str, RealArray]:
    """Per pixel: signed AP distance ``d`` to the spinal axis (anterior +), and the axis'
    interpolated depth ``depth``, half width ``half_width`` and lateral centre ``xc``."""
    nodes: list[tuple[float, float, float, float, float]] = []
    for k, v in enumerate(anatomy.vertebrae):
        nodes.append((v.centre_mm[1], v.centre_mm[2], v.depth_mm, v.width_mm / 2, v.centre_mm[0]))
        if k < len(anatomy.discs):
            d = anatomy.discs[k]
            nodes.append(
                (d.centre_mm[1], d.centre_mm[2], d.depth_mm - 1.5, d.width_mm / 2, d.centre_mm[0])
            )
    p = np.asarray(nodes)
    a, b = p[:-1, None, None, :], p[1:, None, None, :]
    seg = b[..., :2] - a[..., :2]
    length2 = np.sum(seg**2, axis=-1)
    t = ((y - a[..., 0]) * seg[..., 0] + (z - a[..., 1]) * seg[..., 1]) / length2
    lo = np.full(len(p) - 1, 0.0)
    hi = np.full(len(p) - 1, 1.0)
    lo[0], hi[-1] = -np.inf, np.inf
    t = np.clip(t, lo[:, None, None], hi[:, None, None])
    fy, fz = a[..., 0] + t * seg[..., 0], a[..., 1] + t * seg[..., 1]
    dist2 = (y - fy) ** 2 + (z - fz) ** 2
    k = np.argmin(dist2, axis=0)[None]
    take = lambda arr: np.take_along_axis(arr, k, axis=0)[0]  # noqa: E731
    norm = np.sqrt(length2)
    ny, nz = -seg[..., 1] / norm, seg[..., 0] / norm
    d = take((y - fy) * ny + (z - fz) * nz)
    tc = np.clip(t, 0.0, 1.0)
    props = {
        name: take(a[..., i] + tc * (b[..., i] - a[..., i]))
        for name, i in (("depth", 2), ("half_width", 3), ("xc", 4))
    }
    lum = [v for v in anatomy.vertebrae if v.level.startswith("L")]
    top, bottom = np.asarray(lum[0].centre_mm[1:]), np.asarray(lum[-1].centre_mm[1:])
    chord = (bottom - top) / np.linalg.norm(bottom - top)
    d_line = (y - top[0]) * -chord[1] + (z - top[1]) * chord[0]
    return {"d": d, "d_line": d_line, **props}


def _background(
    anatomy: Anatomy,
    marrow: Marrow,
    axis: dict[str, RealArray],
    *,
    x: float,
    y: RealArray,
    z: RealArray,
    px: float,
    field_t: float,
    texture: RealArray,
) -> Canvas:
    """Skin, fat, muscles, abdomen, vessels and spinal canal on one slice plane."""
    d, depth, xi = axis["d"], axis["depth"], x - axis["xc"]
    canvas = Canvas.empty(d.shape)
    ref = anatomy.vertebrae[-5].depth_mm / 2 + anatomy.back_depth_mm + anatomy.fat_posterior_mm
    d_post = -ref + 0.003 * xi**2
    d_ant = anatomy.abdomen_ap_mm * np.sqrt(np.clip(1 - (xi / anatomy.abdomen_lr_mm) ** 2, 0, 1))
    # the back follows part of the lordosis (a real back is not a straight line)
    e_post = 0.65 * axis["d_line"] + 0.35 * d - d_post
    e_ant = d_ant - axis["d_line"]
    e = np.minimum(np.minimum(e_post, e_ant), anatomy.abdomen_lr_mm - np.abs(xi))
    paint(canvas, ramp(e, px), tissue("skin", field_t))
    fat_t = np.where(e_post < e_ant, anatomy.fat_posterior_mm, anatomy.fat_anterior_mm)
    fat_t = fat_t.astype(np.float32)
    paint(canvas, ramp(e - 1.8, px), tissue("fat", field_t))
    inner = ramp(e - 1.8 - fat_t, px)
    paint(canvas, inner, tissue("abdomen", field_t))
    paint(canvas, inner * np.clip((texture - 0.3) / 2.0, 0, 0.6), tissue("fluid", field_t))
    paint(canvas, inner * np.clip((0.3 - texture) / 1.6, 0, 0.8), tissue("mesentery", field_t))
    paint(canvas, inner * np.clip((texture - 2.0) / 0.6, 0, 1), tissue("bowel_gas", field_t))
    muscle = tissue("muscle", field_t, fat_fraction=marrow.muscle_ff)
    back = ramp(np.minimum(-(d + depth / 2 + 3.0), 65.0 - np.abs(xi)), px)
    paint(canvas, inner * back, muscle)
    wall = ramp(np.minimum(e - fat_t - 1.8, fat_t + 16.0 - e), px) * (e_ant < e_post)
    paint(canvas, wall, muscle)
    psoas_r = np.clip((anatomy.vertebrae[0].centre_mm[2] - z) / 160.0, 0, 1) * 24.0
    for side in (-1.0, 1.0):
        xp = xi - side * (axis["half_width"] + psoas_r * 0.6)
        paint(canvas, inner * ramp(psoas_r - np.hypot(xp, (d + 0.1 * depth) * 1.1), px), muscle)
    above = z > anatomy.vertebrae[-5].centre_mm[2]  # aorta and IVC end near L4
    for xv, r in ((-14.0, 10.0), (20.0, 9.0)):
        vessel = ramp(r - np.hypot(xi - xv, (d - depth / 2 - r - 3) * 1.2), px)
        paint(canvas, inner * above * vessel, tissue("blood", field_t))
    prevertebral = ramp(
        np.minimum(
            np.minimum(d - depth / 2 + 1.0, depth / 2 + 4.0 - d), axis["half_width"] - np.abs(xi)
        ),
        px,
    )
    paint(canvas, inner * prevertebral, tissue("fat", field_t))
    cd, ch = anatomy.canal_depth_mm, anatomy.canal_half_width_mm
    dc = d + depth / 2 + cd / 2 + 0.5
    paint(canvas, ramp(1 - np.hypot(xi / ch, dc / (cd / 2)), px / ch), tissue("fat", field_t))
    paint(
        canvas,
        ramp(1 - np.hypot(xi / (ch - 1.5), (dc - 1.5) / (cd / 2 - 2.5)), px / ch),
        tissue("csf", field_t),
    )
    cord = ramp(1 - np.hypot(xi / 5.0, (dc - 1.0) / 4.0), px / 4.0) * (z > anatomy.conus_z_mm)
    paint(canvas, cord, tissue("cord", field_t))
    lig = ramp(np.minimum(2.0 - np.abs(xi), -(d + depth / 2 + cd + 4)), px) * back * inner
    paint(canvas, lig, tissue("ligament", field_t))
    return canvas


def render(
    anatomy: Anatomy,
    marrow: Marrow,
    lesions: tuple[Lesion, ...],
    *,
    affine: Affine,
    shape: tuple[int, int, int],
    field_t: float,
    texture_waves: RealArray,
) -> Rendered:
    """Sample the subject on the grid ``shape`` / ``affine`` (see module docstring)."""
    y, z = (c.astype(np.float32) for c in plane_coordinates(affine, shape))
    plane = Plane(
        y=y,
        z=z,
        inv=np.linalg.inv(affine[1:3, 1:3]).astype(np.float64),
        origin=np.asarray(affine[1:3, 3], dtype=np.float64),
        px=float(np.mean(np.linalg.norm(affine[:3, 1:3], axis=0))),
        field_t=field_t,
    )
    axis = {k: a.astype(np.float32) for k, a in _centreline(anatomy, y, z).items()}
    xs = slice_positions(affine, shape[0], n_sub=N_SUB)
    out = [np.zeros(shape, np.float32) for _ in range(3)]
    labels = np.zeros(shape, np.uint8)
    tubes = rib_tubes(anatomy)
    rib_occ = np.zeros(shape, np.float32)
    ff_sum, ff_weight = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    surface, surface_label, anterior = (
        np.full(shape, 99.0),
        np.zeros(shape, np.uint8),
        np.zeros(shape),
    )
    for i in range(shape[0]):
        xc = float(xs[i].mean())
        bg = _background(
            anatomy,
            marrow,
            axis,
            x=xc,
            y=y,
            z=z,
            px=plane.px,
            field_t=field_t,
            texture=abdomen_texture(texture_waves, xc, y, z),
        )
        occupancy: dict[str, tuple[tuple[slice, slice], RealArray]] = {}
        for m in range(N_SUB):
            cur, x = bg.copy(), float(xs[i, m])
            paint_discs(cur, anatomy, x, plane)
            paint_posterior(cur, anatomy, marrow, x, plane)
            for win, occ in paint_ribs(cur, tubes, marrow, x, plane):
                rib_occ[i][win] += occ / N_SUB
            for hit in paint_bodies(cur, anatomy, marrow, lesions, x, plane):
                key, win = hit.vertebra.level, hit.window
                occupancy[key] = (win, occupancy.get(key, (win, 0.0))[1] + hit.occupancy / N_SUB)
                ff_sum[i][win] += hit.occupancy * hit.marrow_ff
                ff_weight[i][win] += hit.occupancy
                if m == N_SUB // 2:
                    closer = hit.distance_mm < surface[i][win]
                    surface[i][win][closer] = hit.distance_mm[closer]
                    surface_label[i][win][closer] = hit.vertebra.label
                    anterior[i][win][closer] = (hit.w_mm / (hit.vertebra.depth_mm / 2))[closer]
            for a_out, a_cur in zip(out, (cur.water, cur.fat, cur.r2star), strict=True):
                a_out[i] += a_cur / N_SUB
        _resolve_labels(labels[i], anatomy, occupancy)
    return Rendered(
        water_pd=out[0],
        fat_pd=out[1],
        r2star=out[2],
        labels=labels,
        ribs=(rib_occ >= 0.5) & (labels == 0),
        marrow_ff=np.where(ff_weight > 0, ff_sum / np.where(ff_weight > 0, ff_weight, 1), np.nan),
        surface_mm=surface,
        surface_label=surface_label,
        surface_anterior=anterior,
    )


def _resolve_labels(
    labels: np.ndarray,
    anatomy: Anatomy,
    occupancy: dict[str, tuple[tuple[slice, slice], RealArray]],
) -> None:
    """A pixel takes the label of the body occupying at least half of it (the most, on ties)."""
    best = np.zeros(labels.shape)
    for v in anatomy.vertebrae:
        if v.level in occupancy:
            win, occ = occupancy[v.level]
            take = (occ >= 0.5) & (occ > best[win])
            labels[win][take] = v.label
            best[win] = np.maximum(best[win], occ)
