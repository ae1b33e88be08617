"""The spine of the phantom on one sub-slice plane: discs, posterior elements, ribs, bodies.

Each structure is evaluated only in a pixel window around it, in its own body-local frame
(``u`` axial towards caudal, ``w`` towards anterior, mm); occupancy is a one-pixel ramp of the
signed distance to its surface (partial volume in-plane).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vertebrafat.core.types import RealArray
from vertebrafat.phantom.marrow import Lesion, Marrow, marrow_ff
from vertebrafat.phantom.skeleton import Anatomy, Vertebra
from vertebrafat.phantom.tissue import Canvas, paint, ramp, tissue


@dataclass(frozen=True)
class Plane:
    """In-plane world coordinates ``y``, ``z`` (mm, ``(rows, cols)``), the pixel -> world map
    (``inv`` its inverse, ``origin``), mean pixel size and field strength."""

    y: RealArray
    z: RealArray
    inv: RealArray
    origin: RealArray
    px: float
    field_t: float


@dataclass(frozen=True)
class BodyHit:
    """Where a body was painted on a plane: window, signed distance, local ``w``, occupancy
    (cortex included) and the body's marrow FF field (fraction; defined on the whole window)."""

    vertebra: Vertebra
    window: tuple[slice, slice]
    distance_mm: RealArray
    w_mm: RealArray
    occupancy: RealArray
    marrow_ff: RealArray


def _local(
    v: Vertebra | tuple[float, float, float, float], y: RealArray, z: RealArray
) -> tuple[RealArray, RealArray]:
    cy, cz, a = (v.centre_mm[1], v.centre_mm[2], v.angle_rad) if isinstance(v, Vertebra) else v[1:]
    dy, dz = y - float(cy), z - float(cz)
    sin, cos = math.sin(a), math.cos(a)  # Python floats keep float32 planes float32
    return dy * sin - dz * cos, dy * cos + dz * sin


def rounded_rect(
    u: RealArray,
    v: RealArray,
    half_u: RealArray | float,
    half_v: RealArray | float,
    radius: float,
) -> RealArray:
    """Signed distance (mm, negative inside) to a rounded rectangle centred at the origin."""
    qu = np.abs(u) - (half_u - radius)
    qv = np.abs(v) - (half_v - radius)
    out = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0)) + np.minimum(np.maximum(qu, qv), 0)
    return out - radius


def _body_missed(v: Vertebra, xi: float) -> bool:
    """True when the plane at lateral offset ``xi`` misses body ``v`` (beyond its half width)."""
    return abs(xi) >= v.width_mm / 2


def body_distance(v: Vertebra, xi: float, u: RealArray, w: RealArray) -> RealArray | None:
    """Signed distance (mm) to body ``v`` at lateral offset ``xi`` (None: plane misses it)."""
    if _body_missed(v, xi):
        return None
    f = 1 - (abs(xi) / (v.width_mm / 2)) ** 2.5
    half_v = v.depth_mm * f**0.4 / 2
    v0 = -v.depth_mm / 2 + half_v
    rel = np.clip((w - v0) / half_v, -1, 1)
    half_u = v.height_mm / 2 * (1 - v.wedge * (w / v.depth_mm + 0.5)) - v.concavity_mm * (
        1 - rel**2
    )
    return rounded_rect(u, w - v0, half_u, half_v, min(3.5, 0.8 * half_v))


def _windows(
    centre: tuple[float, float],
    radius_mm: float,
    plane: Plane,
) -> tuple[slice, slice] | None:
    rc = plane.inv @ (np.asarray(centre) - plane.origin)
    r = radius_mm / plane.px + 2
    shape = plane.y.shape
    r0, r1 = max(0, int(rc[0] - r)), min(shape[0], int(rc[0] + r) + 1)
    c0, c1 = max(0, int(rc[1] - r)), min(shape[1], int(rc[1] + r) + 1)
    return (slice(r0, r1), slice(c0, c1)) if r0 < r1 and c0 < c1 else None


def _point(v: Vertebra, u: float, w: float) -> tuple[float, float]:
    a = v.angle_rad
    return (
        v.centre_mm[1] + u * np.sin(a) + w * np.cos(a),
        v.centre_mm[2] - u * np.cos(a) + w * np.sin(a),
    )


def _posterior_missed(v: Vertebra, anatomy: Anatomy, xi: float) -> bool:
    """True when the plane at lateral offset ``xi`` misses ``v``'s posterior elements."""
    return v.level in ("S2", "S3") or abs(xi) > anatomy.canal_half_width_mm + 14


def _posterior_elements(
    v: Vertebra, anatomy: Anatomy, xi: float, u: RealArray, w: RealArray
) -> RealArray | None:
    """Signed distance (mm) to pedicles, lamina, articular pillars and spinous process."""
    if _posterior_missed(v, anatomy, xi):
        return None
    h, back, cd, ch = (
        v.height_mm,
        -v.depth_mm / 2,
        anatomy.canal_depth_mm,
        anatomy.canal_half_width_mm,
    )
    ax = abs(xi)
    parts = [
        rounded_rect(u + 0.15 * h, w - back + cd / 2, 7.5, cd / 2 + 1.5, 3.0)
        if ch - 1 < ax < ch + 7
        else None,
        rounded_rect(u - 0.05 * h, w - back + cd + 3.5, 0.4 * h, 3.5, 2.0) if ax < ch + 6 else None,
        rounded_rect(u, w - back + 0.8 * cd, h / 2 + 3.0, 7.0, 3.0)
        if ch + 1 < ax < ch + 13
        else None,
        rounded_rect(u - 0.2 * h, w - back + cd + 17.0, 0.3 * h, 13.0, 4.5) if ax < 4.5 else None,
    ]
    found = [p for p in parts if p is not None]
    return np.minimum.reduce(found) if found else None


def paint_discs(cur: Canvas, anatomy: Anatomy, x: float, plane: Plane) -> None:
    """Paint annulus and nucleus of every disc the plane at lateral ``x`` cuts."""
    for d in anatomy.discs:
        xi = x - d.centre_mm[0]
        f = 1 - (abs(xi) / (d.width_mm / 2)) ** 2.5
        win = _windows(d.centre_mm[1:], d.depth_mm / 2 + 3, plane)
        if f <= 0 or win is None:
            continue
        u, w = _local((0.0, *d.centre_mm[1:], d.angle_rad), plane.y[win], plane.z[win])
        hv = d.depth_mm * f**0.4 / 2
        sd = rounded_rect(u, w + d.depth_mm / 2 - hv, d.gap_mm / 2 + 2.5, hv, min(4.0, 0.8 * hv))
        sub = cur.window(*win)
        paint(sub, ramp(-sd, plane.px), tissue("annulus", plane.field_t))
        if d.nucleus:
            inner = rounded_rect(u, w + 2, d.gap_mm / 2 + 1, 0.32 * d.depth_mm, 3.0)
            paint(
                sub, ramp(-np.maximum(inner, sd + 2.5), plane.px), tissue("nucleus", plane.field_t)
            )


def paint_posterior(cur: Canvas, anatomy: Anatomy, marrow: Marrow, x: float, plane: Plane) -> None:
    """Paint pedicles, laminae, articular pillars and spinous processes (cortex + marrow)."""
    for v in anatomy.vertebrae:
        xi = x - v.centre_mm[0]
        if _posterior_missed(v, anatomy, xi):
            continue
        win = _windows(_point(v, 0.0, -v.depth_mm / 2 - 30), 48, plane)
        if win is None:
            continue
        u, w = _local(v, plane.y[win], plane.z[win])
        sd = _posterior_elements(v, anatomy, xi, u, w)
        if sd is None:
            continue
        ff = min(0.95, marrow.ff_of(v.level) + 0.1)
        sub = cur.window(*win)
        paint(sub, ramp(-sd, plane.px), tissue("cortex", plane.field_t))
        paint(
            sub,
            ramp(-(sd + v.shell_mm), plane.px),
            tissue("marrow", plane.field_t, fat_fraction=ff, r2star_3t=marrow.r2star_per_s),
        )


# Rib and transverse-process centrelines in the body frame of their vertebra: (lateral offset
# beyond the canal half width, u, w relative to the posterior wall, tube radius), mm. A rib head
# sits at the costal facet where the pedicle meets the posterolateral body, its neck runs back
# to the transverse process, the shaft turns lateral, caudal and then anterior; T12's floating
# rib is short. Lumbar transverse processes leave the pedicle straight laterally (L3 longest).
_RIB = ((8.0, 0.0, 1.0, 5.0), (24.0, 3.0, -14.0, 3.8), (45.0, 12.0, -22.0, 4.2),
        (75.0, 30.0, -10.0, 4.2), (100.0, 50.0, 15.0, 4.0))
_RIB_POINTS = {"T12": 4, "T11": 5, "T10": 5, "T9": 5}
_PROCESS_MM = {"L1": 18.0, "L2": 22.0, "L3": 27.0, "L4": 24.0, "L5": 20.0, "L6": 18.0}
_STEP_MM = 0.7


@dataclass(frozen=True)
class Tube:
    """Points (x, y, z world mm) and radii (mm) sampled every ``_STEP_MM`` along a rib or a
    transverse process; ``rib`` says which (ribs are the truth's rib class)."""

    points: RealArray
    radii: RealArray
    rib: bool


def _polyline(nodes: RealArray) -> RealArray:
    """Resample ``(n, k)`` nodes (first three columns x, y, z) every ``_STEP_MM``."""
    seg = np.linalg.norm(np.diff(nodes[:, :3], axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, arc[-1], max(2, int(arc[-1] / _STEP_MM) + 1))
    return np.stack([np.interp(s, arc, nodes[:, j]) for j in range(nodes.shape[1])], axis=1)


def rib_tubes(anatomy: Anatomy) -> tuple[Tube, ...]:
    """Ribs of the thoracic vertebrae and transverse processes of the lumbar ones, both sides."""
    out = []
    ch = anatomy.canal_half_width_mm
    for v in anatomy.vertebrae:
        back = -v.depth_mm / 2
        if v.level in _RIB_POINTS:
            spec = [(ch + a, b, back + c, r) for a, b, c, r in _RIB[: _RIB_POINTS[v.level]]]
            spec[0] = (spec[0][0], -0.1 * v.height_mm, spec[0][2], spec[0][3])  # upper half
            rib = True
        elif v.level in _PROCESS_MM:
            length = _PROCESS_MM[v.level] * v.width_mm / 45.0
            u0, w0 = 0.1 * v.height_mm, back - 0.55 * anatomy.canal_depth_mm
            spec = [(ch + 4.0, u0, w0, 3.6), (ch + 4.0 + length, u0 + 1.0, w0 - 2.0, 2.8)]
            rib = False
        else:
            continue
        for side in (-1.0, 1.0):
            nodes = []
            for lat, u, w, r in spec:
                y, z = _point(v, u, w)
                nodes.append((v.centre_mm[0] + side * lat, y, z, r))
            line = _polyline(np.asarray(nodes))
            out.append(Tube(points=line[:, :3], radii=line[:, 3], rib=rib))
    return tuple(out)


def paint_ribs(
    cur: Canvas, tubes: tuple[Tube, ...], marrow: Marrow, x: float, plane: Plane
) -> list[tuple[tuple[slice, slice], RealArray]]:
    """Paint the ribs and transverse processes the plane at ``x`` cuts (cortex 1 mm, marrow);
    return ``(window, occupancy)`` of each rib cut (for the rib truth)."""
    hits = []
    ff = min(0.95, marrow.baseline_ff + 0.05)
    props_cortex = tissue("cortex", plane.field_t)
    props_marrow = tissue("marrow", plane.field_t, fat_fraction=ff, r2star_3t=marrow.r2star_per_s)
    for t in tubes:
        near = np.abs(t.points[:, 0] - x) < t.radii
        if not near.any():
            continue
        pts, rad = t.points[near].astype(plane.y.dtype), t.radii[near].astype(plane.y.dtype)
        lo, hi = pts[:, 1:].min(axis=0) - rad.max(), pts[:, 1:].max(axis=0) + rad.max()
        win = _windows(tuple((lo + hi) / 2), float(np.max(hi - lo)) / 2, plane)
        if win is None:
            continue
        y, z = plane.y[win], plane.z[win]
        sd = np.full(y.shape, np.inf, dtype=y.dtype)
        for (px_, py_, pz_), r in zip(pts, rad, strict=True):
            d = np.sqrt((y - py_) ** 2 + (z - pz_) ** 2 + (x - px_) ** 2) - r
            np.minimum(sd, d, out=sd)
        occ = ramp(-sd, plane.px)
        if not occ.any():
            continue
        sub = cur.window(*win)
        paint(sub, occ, props_cortex)
        paint(sub, ramp(-(sd + 1.0), plane.px), props_marrow)
        if t.rib:
            hits.append((win, occ))
    return hits


def paint_bodies(
    cur: Canvas,
    anatomy: Anatomy,
    marrow: Marrow,
    lesions: tuple[Lesion, ...],
    x: float,
    plane: Plane,
) -> list[BodyHit]:
    """Paint every vertebral body (cortical shell, then marrow FF field); return the hits."""
    hits = []
    for v in anatomy.vertebrae:
        xi = x - v.centre_mm[0]
        if _body_missed(v, xi):
            continue  # before the window: most planes miss most bodies
        win = _windows(v.centre_mm[1:], max(v.height_mm, v.depth_mm) / 2 + 4, plane)
        if win is None:
            continue
        u, w = _local(v, plane.y[win], plane.z[win])
        sd = body_distance(v, xi, u, w)
        if sd is None:
            continue
        sub = cur.window(*win)
        occ = ramp(-sd, plane.px)
        paint(sub, occ, tissue("cortex", plane.field_t))
        ff = marrow_ff(
            marrow,
            lesions,
            v,
            x=np.full_like(u, xi),
            u=u,
            v=w,
        )
        paint(
            sub,
            ramp(-(sd + v.shell_mm), plane.px),
            tissue("marrow", plane.field_t, fat_fraction=ff, r2star_3t=marrow.r2star_per_s),
        )
        hits.append(BodyHit(v, win, sd, w, occ, ff))
    return hits
