"""Intraclass correlation coefficients (Shrout & Fleiss 1979; McGraw & Wong 1996 CIs).

For an ``(n targets, k raters)`` table without missing values, with the two-way ANOVA mean
squares MSR (targets), MSC (raters), MSE (residual) and the one-way MSW (within targets):

======  ==============================================  ===================================
name    estimate                                        model
======  ==============================================  ===================================
ICC1    (MSR - MSW) / (MSR + (k-1) MSW)                 one-way random, single measurement
ICC2    (MSR - MSE) / (MSR + (k-1) MSE + k (MSC-MSE)/n) two-way random, absolute agreement
ICC3    (MSR - MSE) / (MSR + (k-1) MSE)                 two-way mixed, consistency
ICC1k   (MSR - MSW) / MSR                               as ICC1, mean of k measurements
ICC2k   (MSR - MSE) / (MSR + (MSC - MSE) / n)           as ICC2, mean of k
ICC3k   (MSR - MSE) / MSR                               as ICC3, mean of k
======  ==============================================  ===================================

95 % CIs are the F-based intervals of Shrout & Fleiss (ICC2 with the Satterthwaite
degrees of freedom), as pingouin's ``intraclass_corr`` computes them (pingouin rounds its
CIs to 2 decimals; these are not rounded). Estimates are NaN where a denominator is 0
(e.g. all values equal).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from vertebrafat.core.errors import InputError

ICC_NAMES = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")


def _div(a: float, b: float) -> float:
    return a / b if b != 0 and math.isfinite(b) else math.nan


def mean_squares(data: npt.ArrayLike) -> dict[str, float]:
    """MSR, MSC, MSE, MSW of an ``(n, k)`` table (n >= 2 targets, k >= 2 raters).

    Raises
    ------
    InputError
        If the table is not 2D with n >= 2 and k >= 2, or holds non-finite values.
    """
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2 or not np.isfinite(x).all():
        raise InputError(f"ICC needs a complete (targets, raters) table with >= 2 of each, "
                         f"got shape {x.shape}")
    n, k = x.shape
    grand = x.mean()
    ss_r = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_c = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_t = ((x - grand) ** 2).sum()
    ss_e = ss_t - ss_r - ss_c
    return {"MSR": ss_r / (n - 1), "MSC": ss_c / (k - 1), "MSE": ss_e / ((n - 1) * (k - 1)),
            "MSW": (ss_c + ss_e) / (n * (k - 1))}


def intraclass_correlation(
    data: npt.ArrayLike, *, confidence: float = 0.95
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """The six Shrout-Fleiss ICCs of an ``(n targets, k raters)`` table and their CIs.

    Returns
    -------
    (icc, icc_ci) : dicts keyed by :data:`ICC_NAMES`; CIs as (low, high).

    Examples
    --------
    Shrout & Fleiss (1979) Table 2 (6 targets x 4 judges): ICC1 0.17, ICC2 0.29, ICC3 0.71,
    ICC1k 0.44, ICC2k 0.62, ICC3k 0.91.
    """
    ms = mean_squares(data)
    n, k = np.asarray(data).shape
    msr, msc, mse, msw = ms["MSR"], ms["MSC"], ms["MSE"], ms["MSW"]
    icc = {
        "ICC1": _div(msr - msw, msr + (k - 1) * msw),
        "ICC2": _div(msr - mse, msr + (k - 1) * mse + k * (msc - mse) / n),
        "ICC3": _div(msr - mse, msr + (k - 1) * mse),
        "ICC1k": _div(msr - msw, msr),
        "ICC2k": _div(msr - mse, msr + (msc - mse) / n),
        "ICC3k": _div(msr - mse, msr),
    }
    q = 0.5 + confidence / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = _div(msr, msw)
        f1l = f1 / stats.f.ppf(q, n - 1, n * (k - 1))
        f1u = f1 * stats.f.ppf(q, n * (k - 1), n - 1)
        f3 = _div(msr, mse)
        f3l = f3 / stats.f.ppf(q, n - 1, (n - 1) * (k - 1))
        f3u = f3 * stats.f.ppf(q, (n - 1) * (k - 1), n - 1)
        l2, u2 = _icc2_ci(icc["ICC2"], msr, msc, mse, n, k, q)
        ci = {
            "ICC1": ((f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
            "ICC2": (l2, u2),
            "ICC3": ((f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
            "ICC1k": (1 - 1 / f1l, 1 - 1 / f1u),
            "ICC2k": (k * l2 / (1 + (k - 1) * l2), k * u2 / (1 + (k - 1) * u2)),
            "ICC3k": (1 - 1 / f3l, 1 - 1 / f3u),
        }
    clean = {name: (float(lo), float(hi)) for name, (lo, hi) in ci.items()}
    return icc, clean


def _icc2_ci(icc2: float, msr: float, msc: float, mse: float, n: int, k: int,
             q: float) -> tuple[float, float]:
    """Shrout-Fleiss CI of ICC(2,1) with Satterthwaite's degrees of freedom."""
    if not math.isfinite(icc2) or mse == 0:
        return math.nan, math.nan
    fj = msc / mse
    a = k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2
    vn = (k - 1) * (n - 1) * a**2
    vd = (n - 1) * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    f2u = stats.f.ppf(q, n - 1, v)
    f2l = stats.f.ppf(q, v, n - 1)
    c = k * msc + (k * n - k - n) * mse
    low = n * (msr - f2u * mse) / (f2u * c + n * msr)
    high = n * (f2l * msr - mse) / (c + n * f2l * msr)
    return float(low), float(high)
