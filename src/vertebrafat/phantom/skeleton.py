"""Subject anatomy of the phantom: a lordotic chain of vertebral bodies and the body around it.

Everything is in world RAS mm (x right, y anterior, z superior) and drawn once per subject
from the subject's random stream, so a rescan sees the same anatomy from a new position.
Bodies are described in their own frame: ``u`` along the spinal axis (towards caudal), ``v``
perpendicular in the sagittal plane (towards anterior), ``x`` lateral.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vertebrafat.core.labels import LABEL_OF_LEVEL


@dataclass(frozen=True)
class Vertebra:
    """One vertebral body (sacral segments S1-S3 share the sacrum label 26).

    ``angle_rad`` is the tilt of the body's axis from vertical (positive: the caudal end lies
    anterior). ``wedge`` is the anterior height loss (0-1) of a compression fracture.
    """

    level: str
    label: int
    centre_mm: tuple[float, float, float]
    angle_rad: float
    height_mm: float
    depth_mm: float
    width_mm: float
    shell_mm: float
    concavity_mm: float
    wedge: float = 0.0


@dataclass(frozen=True)
class Disc:
    """An intervertebral disc between two bodies; ``gap_mm`` measured at the bodies' centres."""

    above: str
    centre_mm: tuple[float, float, float]
    angle_rad: float
    gap_mm: float
    depth_mm: float
    width_mm: float
    nucleus: bool


@dataclass(frozen=True)
class Anatomy:
    """Spine and body habitus of one subject (lengths in mm, angles in degrees/radians)."""

    vertebrae: tuple[Vertebra, ...]
    discs: tuple[Disc, ...]
    lordosis_deg: float
    canal_depth_mm: float
    canal_half_width_mm: float
    back_depth_mm: float
    fat_posterior_mm: float
    fat_anterior_mm: float
    abdomen_ap_mm: float
    abdomen_lr_mm: float
    conus_z_mm: float
    transitional: str


def _level_names(transitional: str) -> list[str]:
    lumbar = ["L1", "L2", "L3", "L4", "L5"] + (["L6"] if transitional == "L6" else [])
    return ["T9", "T10", "T11", "T12", *lumbar, "S1", "S2", "S3"]


def _sizes(name: str, k: int, n_lumbar: int, scale: float) -> tuple[float, float, float]:
    """(height, depth, width) in mm of a body before per-level jitter."""
    if name.startswith("S"):
        i = int(name[1]) - 1
        return (28.0 - 5 * i) * scale, (40.0 - 8 * i) * scale, (48.0 - 10 * i) * scale
    frac = k / (3 + n_lumbar)  # 0 at T9 .. 1 at the last lumbar
    return (20.0 + 9.0 * frac) * scale, (26.0 + 10.0 * frac) * scale, (34.0 + 16.0 * frac) * scale


def _angles(names: list[str], lordosis: float, sacral_slope: float) -> list[float]:
    """Axis tilt (deg) of each body: lordosis concentrated caudally, kyphosis above L1."""
    lumbar = [n for n in names if n.startswith("L")]
    out = []
    for n in names:
        if n.startswith("S"):
            out.append(-sacral_slope + {"S1": 0.0, "S2": 12.0, "S3": 28.0}[n])
        elif n.startswith("L"):
            f = ((lumbar.index(n)) / len(lumbar)) ** 1.4
            out.append(-sacral_slope + lordosis * (1.0 - f))
        else:
            out.append(-sacral_slope + lordosis + 3.0 * (names.index("L1") - names.index(n)))
    return out


def draw_anatomy(rng: np.random.Generator, *, fracture: bool, transitional: str) -> Anatomy:
    """Draw one subject's spine and habitus; L3's centre sits at the world origin.

    ``transitional`` is ``""``, ``"L6"`` (an extra lumbar body) or ``"sacralised"`` (L5 fused
    towards the sacrum: shallow L5/S1 disc, sacrum-like L5).
    """
    names = _level_names(transitional)
    n_lumbar = sum(n.startswith("L") for n in names)
    lordosis = float(rng.uniform(30.0, 65.0))
    sacral_slope = float(np.clip(0.55 * lordosis + 8.0 + rng.normal(0, 4), 25, 55))
    angles = np.deg2rad(_angles(names, lordosis, sacral_slope))
    scale = float(rng.uniform(0.92, 1.1))
    shell = float(rng.uniform(0.8, 1.5))
    broken = int(rng.integers(2, 8)) if fracture else -1  # T11..L4
    bodies: list[dict[str, float]] = []
    for k, n in enumerate(names):
        h, d, w = _sizes(n, k, n_lumbar, scale)
        jit = rng.normal(1.0, 0.03, 3)
        body = {"h": h * jit[0], "d": d * jit[1], "w": w * jit[2], "wedge": 0.0}
        if k == broken:
            body["wedge"] = float(rng.uniform(0.2, 0.4))
        if n == "L5" and transitional == "sacralised":
            body["d"], body["w"] = body["d"] * 1.08, body["w"] * 1.12
        bodies.append(body)
    gaps = []
    for k, n in enumerate(names[:-1]):
        nxt = names[k + 1]
        if nxt.startswith("S") and n.startswith("S"):
            gaps.append(2.0)
        elif n.startswith("T"):
            gaps.append(float(rng.uniform(5.0, 7.0)))
        elif nxt == "S1":
            gaps.append(3.0 if transitional == "sacralised" else float(rng.uniform(8.0, 11.0)))
        else:
            gaps.append(float(rng.uniform(7.0, 13.0)) * (0.9 if nxt == "L1" else 1.0))
    # Chain the bodies along their axes (axis = (sin a, -cos a) in (y, z), caudal).
    pos = [np.zeros(2)]
    for k in range(len(names) - 1):
        t0 = np.array([np.sin(angles[k]), -np.cos(angles[k])])
        t1 = np.array([np.sin(angles[k + 1]), -np.cos(angles[k + 1])])
        tm = (t0 + t1) / np.linalg.norm(t0 + t1)
        h0 = bodies[k]["h"] * (1 - bodies[k]["wedge"] / 2)
        h1 = bodies[k + 1]["h"] * (1 - bodies[k + 1]["wedge"] / 2)
        pos.append(pos[-1] + t0 * h0 / 2 + tm * gaps[k] + t1 * h1 / 2)
    origin = pos[names.index("L3")]
    zs = np.array([p[1] for p in pos])
    scol = float(np.clip(rng.normal(0, 3.0), -8, 8))
    span = zs[0] - zs[-1]
    xs = scol * np.sin(np.pi * (zs[0] - zs) / span) + rng.normal(0, 0.4, len(names))
    vertebrae = tuple(
        Vertebra(
            level=n,
            label=LABEL_OF_LEVEL.get(n, 26) if not n.startswith("S") else 26,
            centre_mm=(float(xs[k]), float(pos[k][0] - origin[0]), float(pos[k][1] - origin[1])),
            angle_rad=float(angles[k]),
            height_mm=float(b["h"]),
            depth_mm=float(b["d"]),
            width_mm=float(b["w"]),
            shell_mm=shell,
            concavity_mm=float(rng.uniform(0.8, 2.0)),
            wedge=float(b["wedge"]),
        )
        for k, (n, b) in enumerate(zip(names, bodies, strict=True))
    )
    discs = []
    for k in range(len(names) - 1):
        a, b = vertebrae[k], vertebrae[k + 1]
        centre = tuple((np.asarray(a.centre_mm) + np.asarray(b.centre_mm)) / 2)
        discs.append(
            Disc(
                above=a.level,
                centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
                angle_rad=(a.angle_rad + b.angle_rad) / 2,
                gap_mm=gaps[k],
                depth_mm=(a.depth_mm + b.depth_mm) / 2 + 1.5,
                width_mm=(a.width_mm + b.width_mm) / 2,
                nucleus=gaps[k] > 4.0,
            )
        )
    habitus = float(rng.uniform(0.0, 1.0))
    return Anatomy(
        vertebrae=vertebrae,
        discs=tuple(discs),
        lordosis_deg=lordosis,
        canal_depth_mm=float(rng.uniform(14.0, 19.0)),
        canal_half_width_mm=float(rng.uniform(10.0, 13.0)),
        back_depth_mm=float(rng.uniform(50.0, 62.0)),
        fat_posterior_mm=6.0 + 34.0 * habitus * float(rng.uniform(0.7, 1.0)),
        fat_anterior_mm=8.0 + 45.0 * habitus * float(rng.uniform(0.6, 1.0)),
        abdomen_ap_mm=90.0 + 80.0 * habitus + float(rng.uniform(-10, 10)),
        abdomen_lr_mm=140.0 + 50.0 * habitus,
        conus_z_mm=float(vertebrae[names.index("L1")].centre_mm[2] + rng.uniform(-25.0, 10.0)),
        transitional=transitional,
    )
