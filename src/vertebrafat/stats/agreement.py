"""Bland-Altman agreement of two measurement methods (e.g. automatic vs manual BMF).

Differences are ``a - b`` (first table minus second). With n pairs, mean difference ``bias``
and sample SD ``sd`` (ddof=1), and ``t = t_{0.975, n-1}``:

- ``bias_ci = bias ± t sd / sqrt(n)``;
- ``loa = bias ± 1.96 sd`` (Bland & Altman 1986);
- ``loa_ci``: each limit ± t sqrt(3 sd² / n), the approximate SE of a limit of Bland & Altman
  (1999), section 5;
- ``pct_outside``: share (%) of differences strictly beyond the limits;
- proportional bias: OLS slope of the difference on the pair mean ``(a + b) / 2`` with its
  two-sided t-test p value (NaN when every mean is the same).

Edge cases: n = 1 gives NaN for everything but ``bias``; constant differences give
``sd = 0``, all intervals of zero width and 0 % outside. Rows are paired by
(subject, scan, level); rows without a partner, duplicated keys, and rows whose value is
NaN are listed, never silently dropped (:func:`pair_rows`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from scipy import stats

from vertebrafat.core.errors import InputError
from vertebrafat.core.jsonable import json_ready
from vertebrafat.core.labels import level_order_key
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.core.types import FloatArray

Key = tuple[str, str, str]


@dataclass(frozen=True)
class BlandAltman:
    """Bland-Altman statistics of ``a - b`` (see module notes; units of the inputs)."""

    n: int
    bias: float
    bias_ci: tuple[float, float]
    sd: float
    loa: tuple[float, float]
    loa_ci: tuple[tuple[float, float], tuple[float, float]]
    pct_outside: float
    slope: float
    intercept: float
    slope_p: float


@dataclass(frozen=True)
class Pairs:
    """Values of one column paired by (subject, scan, level).

    ``unpaired_a``/``unpaired_b``: keys found in one table only; ``missing``: paired keys
    whose value is NaN in either table; ``duplicated``: keys found twice in one table.
    """

    keys: tuple[Key, ...]
    a: FloatArray
    b: FloatArray
    unpaired_a: tuple[Key, ...]
    unpaired_b: tuple[Key, ...]
    missing: tuple[Key, ...]


def bland_altman(
    a: npt.ArrayLike, b: npt.ArrayLike, *, confidence: float = 0.95
) -> BlandAltman:
    """Bland-Altman statistics of paired measurements ``a`` and ``b`` (1D, same length).

    Raises
    ------
    InputError
        If the lengths differ, there is no pair, or a value is not finite.

    Examples
    --------
    >>> ba = bland_altman([30.0, 32.5, 41.0, 28.0], [31.0, 33.0, 40.0, 29.5])
    >>> ba.n, ba.bias, round(ba.sd, 4)  # differences -1, -0.5, 1, -1.5
    (4, -0.5, 1.0801)
    >>> [round(v, 3) for v in ba.loa]  # bias -/+ 1.96 sd
    [-2.617, 1.617]
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"paired values must be two 1D arrays of one length, got {x.shape} "
                         f"and {y.shape}")
    if x.size == 0 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError("Bland-Altman needs at least one pair of finite values")
    d, m, n = x - y, (x + y) / 2, x.size
    bias = float(d.mean())
    if n < 2:
        nan2 = (math.nan, math.nan)
        return BlandAltman(n, bias, nan2, math.nan, nan2, (nan2, nan2), math.nan, math.nan,
                           math.nan, math.nan)
    sd = float(d.std(ddof=1))
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    half = t * sd / math.sqrt(n)
    loa = (bias - 1.96 * sd, bias + 1.96 * sd)
    se_loa = math.sqrt(3 * sd**2 / n)
    loa_ci = tuple((lim - t * se_loa, lim + t * se_loa) for lim in loa)
    outside = float(np.mean((d < loa[0]) | (d > loa[1])) * 100)
    slope, intercept, p = _proportional_bias(m, d)
    return BlandAltman(n=n, bias=bias, bias_ci=(bias - half, bias + half), sd=sd, loa=loa,
                       loa_ci=loa_ci, pct_outside=outside,  # type: ignore[arg-type]
                       slope=slope, intercept=intercept, slope_p=p)


def _proportional_bias(mean: FloatArray, diff: FloatArray) -> tuple[float, float, float]:
    if mean.size < 3 or np.ptp(mean) == 0:
        return math.nan, math.nan, math.nan
    fit = stats.linregress(mean, diff)
    p = float(fit.pvalue) if math.isfinite(fit.pvalue) else 1.0 if fit.slope == 0 else math.nan
    return float(fit.slope), float(fit.intercept), p


def pair_rows(
    rows_a: Sequence[LevelMeasurement],
    rows_b: Sequence[LevelMeasurement],
    *,
    column: str = "ff_mean",
) -> Pairs:
    """Pair the ``column`` values of two measurement tables by (subject, scan, level).

    Raises
    ------
    InputError
        If ``column`` is not a numeric column, or a (subject, scan, level) key occurs twice
        in one table (the key is quoted).
    """
    numeric = {"n_voxels", "n_slices", "volume_ml", "ff_mean", "ff_median", "ff_sd", "ff_p05",
               "ff_p95", "erosion_mm"}
    if column not in numeric:
        raise InputError(f"column must be one of {sorted(numeric)}, got {column!r}")
    va, vb = _values(rows_a, column, "first"), _values(rows_b, column, "second")
    common = [k for k in va if k in vb]
    good = [k for k in common if math.isfinite(va[k]) and math.isfinite(vb[k])]
    return Pairs(
        keys=tuple(good),
        a=np.array([va[k] for k in good], dtype=np.float64),
        b=np.array([vb[k] for k in good], dtype=np.float64),
        unpaired_a=tuple(k for k in va if k not in vb),
        unpaired_b=tuple(k for k in vb if k not in va),
        missing=tuple(k for k in common if k not in good),
    )


def _values(rows: Sequence[LevelMeasurement], column: str, which: str) -> dict[Key, float]:
    keys = [(r.subject, r.scan, r.level) for r in rows]
    dup = [k for k, c in Counter(keys).items() if c > 1]
    if dup:
        raise InputError(f"{which} table has (subject, scan, level) {dup[0]} more than once")
    return {k: float(getattr(r, column)) for k, r in zip(keys, rows, strict=True)}


def agreement(
    rows_a: Sequence[LevelMeasurement],
    rows_b: Sequence[LevelMeasurement],
    *,
    column: str = "ff_mean",
    confidence: float = 0.95,
) -> dict[str, object]:
    """Pooled and per-level Bland-Altman of two measurement tables (JSON-ready dict).

    Top-level keys: ``column``, the :class:`BlandAltman` fields (pooled over levels),
    ``unpaired`` {``a``, ``b``, ``missing``: lists of [subject, scan, level]}, ``per_level``
    {level: BlandAltman fields}.

    Raises
    ------
    InputError
        When no row pairs up (both tables' first keys are quoted).

    Examples
    --------
    >>> import vertebrafat as vf
    >>> a = vf.load_table("rater_a.csv")  # doctest: +SKIP
    >>> b = vf.load_table("rater_b.csv")  # doctest: +SKIP
    >>> result = agreement(a, b)  # doctest: +SKIP
    >>> result["bias"], result["loa"], sorted(result["per_level"])  # doctest: +SKIP
    (-0.21, [-1.4, 0.98], ['L1', 'L2', 'L3', 'L4', 'L5'])
    """
    pairs = pair_rows(rows_a, rows_b, column=column)
    if not pairs.keys:
        raise InputError(f"no (subject, scan, level) in common: first table has "
                         f"{list(pairs.unpaired_a[:2])}, second {list(pairs.unpaired_b[:2])}")
    out: dict[str, object] = {"column": column, **_json_dict(asdict(bland_altman(
        pairs.a, pairs.b, confidence=confidence)))}
    out["unpaired"] = {"a": [list(k) for k in pairs.unpaired_a],
                       "b": [list(k) for k in pairs.unpaired_b],
                       "missing": [list(k) for k in pairs.missing]}
    levels = sorted({k[2] for k in pairs.keys}, key=level_order_key)
    per_level = {}
    for level in levels:
        sel = np.array([k[2] == level for k in pairs.keys])
        per_level[level] = json_ready(asdict(bland_altman(pairs.a[sel], pairs.b[sel],
                                                      confidence=confidence)))
    out["per_level"] = per_level
    return out


def _json_dict(value: dict[str, Any]) -> dict[str, object]:
    return cast(dict[str, object], json_ready(value))
