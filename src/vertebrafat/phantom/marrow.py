"""Bone marrow of the phantom: per-level fat fraction, heterogeneity and focal lesions.

FF here is a fraction (0-1) of the marrow's proton density; the public tables use percent.
Every field is a function of body-local coordinates (``x`` lateral, ``u`` axial towards caudal,
``v`` towards anterior, mm), so a repositioned rescan sees the same marrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vertebrafat.core.types import RealArray
from vertebrafat.phantom.skeleton import Anatomy, Vertebra

LESION_KINDS: tuple[str, ...] = ("haemangioma", "modic1", "modic2", "fracture", "transitional")


@dataclass(frozen=True)
class Lesion:
    """One focal finding. ``centre_mm`` is body-local (x, u, v); ``ff_percent`` its marrow FF.

    ``kind`` is one of :data:`LESION_KINDS`; Modic bands sit at the endplate given by the sign
    of ``u``; for ``fracture`` ``size_mm`` is the anterior height lost and ``ff_percent`` NaN.
    """

    kind: str
    level: str
    centre_mm: tuple[float, float, float]
    size_mm: float
    ff_percent: float

    def as_dict(self) -> dict[str, object]:
        """JSON-ready description (``lesions.json``)."""
        return {
            "kind": self.kind,
            "level": self.level,
            "centre_local_mm": list(self.centre_mm),
            "size_mm": self.size_mm,
            "ff_percent": None if np.isnan(self.ff_percent) else self.ff_percent,
        }


@dataclass(frozen=True)
class Marrow:
    """One subject's marrow: age, per-level FF (fraction), texture waves, R2* (1/s at 3 T)."""

    age_years: float
    baseline_ff: float
    gradient_pp: float
    level_ff: tuple[tuple[str, float], ...]
    waves: tuple[tuple[float, float, float, float, float], ...]
    r2star_per_s: float
    muscle_ff: float

    def ff_of(self, level: str) -> float:
        """Baseline marrow FF (fraction) of ``level``."""
        return dict(self.level_ff)[level]


def draw_marrow(
    rng: np.random.Generator,
    anatomy: Anatomy,
    *,
    p_haemangioma: float,
    p_modic1: float,
    p_modic2: float,
) -> tuple[Marrow, tuple[Lesion, ...]]:
    """Draw age, BMF (20-65 % baseline, older -> higher; L5 above L1 by 0-8 pp) and lesions."""
    age = float(rng.uniform(20.0, 80.0))
    baseline = float(np.clip(20.0 + 0.6 * (age - 20.0) + rng.normal(0, 6.0), 20.0, 65.0))
    gradient = float(rng.uniform(0.0, 8.0))
    names = [v.level for v in anatomy.vertebrae]
    lumbar = [n for n in names if n.startswith("L")]
    level_ff = []
    for n in names:
        if n.startswith("L"):
            pos = lumbar.index(n) / max(1, len(lumbar) - 1)
        else:
            pos = -0.25 * (names.index("L1") - names.index(n)) if n.startswith("T") else 1.1
        ff = baseline + gradient * pos + rng.normal(0, 1.0)
        level_ff.append((n, float(np.clip(ff, 5.0, 85.0)) / 100))
    waves = tuple(
        (
            float(k[0]),
            float(k[1]),
            float(k[2]),
            float(rng.uniform(0, 2 * np.pi)),
            float(rng.uniform(0.01, 0.025)),
        )
        for k in rng.normal(0, 1, (6, 3)) / rng.uniform(6.0, 14.0, (6, 1))
    )
    marrow = Marrow(
        age_years=age,
        baseline_ff=baseline / 100,
        gradient_pp=gradient,
        level_ff=tuple(level_ff),
        waves=waves,
        r2star_per_s=float(rng.uniform(60.0, 160.0)),
        muscle_ff=float(np.clip(0.02 + 0.0015 * (age - 20) + rng.normal(0, 0.02), 0.01, 0.25)),
    )
    lesions: list[Lesion] = []
    bodies = {v.level: v for v in anatomy.vertebrae}
    if rng.random() < p_haemangioma:
        v = bodies[str(rng.choice(lumbar))]
        r = float(rng.uniform(3.0, 8.0))
        c = (
            float(rng.uniform(-0.3, 0.3) * v.width_mm / 2),
            float(rng.uniform(-0.3, 0.3) * v.height_mm),
            float(rng.uniform(-0.25, 0.25) * v.depth_mm),
        )
        lesions.append(Lesion("haemangioma", v.level, c, r, float(rng.uniform(70.0, 95.0))))
    for kind, p in (("modic1", p_modic1), ("modic2", p_modic2)):
        if rng.random() < p:
            v = bodies[str(rng.choice(lumbar[-3:]))]
            side = float(rng.choice([-1.0, 1.0]))
            ff = (
                max(0.03, v.depth_mm * 0 + marrow.ff_of(v.level) - rng.uniform(0.15, 0.25))
                if kind == "modic1"
                else float(rng.uniform(0.75, 0.9))
            )
            lesions.append(
                Lesion(
                    kind,
                    v.level,
                    (0.0, side * v.height_mm / 2, 0.0),
                    float(rng.uniform(3.0, 7.0)),
                    100 * float(ff),
                )
            )
    for v in anatomy.vertebrae:
        if v.wedge > 0:
            lesions.append(
                Lesion(
                    "fracture",
                    v.level,
                    (0.0, 0.0, v.depth_mm / 2),
                    v.wedge * v.height_mm,
                    float("nan"),
                )
            )
    if anatomy.transitional:
        lv = "L6" if anatomy.transitional == "L6" else "L5"
        lesions.append(Lesion("transitional", lv, (0.0, 0.0, 0.0), 0.0, float("nan")))
    return marrow, tuple(lesions)


def marrow_ff(
    marrow: Marrow,
    lesions: tuple[Lesion, ...],
    vertebra: Vertebra,
    *,
    x: RealArray,
    u: RealArray,
    v: RealArray,
) -> RealArray:
    """Marrow FF (fraction) at body-local points (mm): level baseline + smooth texture (about
    +-2 pp) + a water-rich basivertebral vein notch, overridden by the level's lesions. Shapes
    of inputs broadcast. (No fatty rim under the cortex: an earlier +12 pp one had no support
    in the literature and made any eroded ROI read 1.7 pp below the whole-body truth.)
    """
    dtype = np.result_type(x, u, v)  # float32 planes stay float32 (scalars as Python floats)
    ff = np.full(np.broadcast(x, u, v).shape, marrow.ff_of(vertebra.level), dtype=dtype)
    for wave in marrow.waves:
        kx, ku, kv, phase, amp = (float(c) for c in wave)
        ff = ff + amp * np.cos(kx * x + ku * u + kv * v + phase + vertebra.centre_mm[2] * 0.05)
    vein = np.exp(-((u / 2.5) ** 2 + (x / 3.0) ** 2 + ((v + vertebra.depth_mm / 2) / 5.0) ** 2))
    ff = ff * (1 - 0.8 * vein)
    for les in lesions:
        if les.level != vertebra.level or np.isnan(les.ff_percent):
            continue
        if les.kind == "haemangioma":
            r = np.sqrt(
                (x - les.centre_mm[0]) ** 2
                + (u - les.centre_mm[1]) ** 2
                + (v - les.centre_mm[2]) ** 2
            )
            w = np.clip((les.size_mm - r) / 1.0 + 0.5, 0.0, 1.0)
        else:  # Modic band along the endplate at the sign of centre u
            edge = np.sign(les.centre_mm[1]) * u - (vertebra.height_mm / 2 - vertebra.concavity_mm)
            w = np.clip((edge + les.size_mm) / 1.5 + 0.5, 0.0, 1.0) * (
                np.abs(v) < 0.45 * vertebra.depth_mm
            )
        ff = (1 - w) * ff + w * les.ff_percent / 100
    return np.clip(ff, 0.0, 1.0)
