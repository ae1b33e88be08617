"""Test-retest repeatability of per-level BMF: precision error, ICC, linear mixed model.

Input: measurement rows with >= 2 scans per (subject, level); rows whose value is NaN do
not count as a scan. A *group* is one (subject, level) with its values over the scans.

- Precision error (Glüer et al. 1995): per group the SD (ddof=1) and CV = SD / mean;
  ``rms_sd = sqrt(sum df_j SD_j² / sum df_j)`` with ``df_j = scans_j - 1`` (the plain RMS
  when every group has the same number of scans); ``rms_cv_percent`` likewise from the CVs
  (groups with mean 0 skipped); ``lsc = 2.77 x rms_sd`` (least significant change, 95 %,
  two measurements) and ``lsc_percent = 2.77 x rms_cv_percent``.
- ICC (:mod:`vertebrafat.stats.icc`): targets = groups, "raters" = the 1st, 2nd, ... scan of each
  group (scan ids sorted as text); only the first ``k`` scans are used, ``k`` being the
  smallest number of scans of any group (``icc_scans``).
- Mixed model (statsmodels ``MixedLM``, REML): ``value ~ C(level)`` (``value ~ 1`` for one
  level) with a random intercept per subject; reports the subject and residual variances,
  the ICC they imply ``var_subject / (var_subject + var_residual)``, the fixed effects and
  whether the fit converged. A failed fit (e.g. constant values) gives NaN and its reason.

Everything is reported overall (all levels) and ``per_level`` (targets = subjects).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.core.jsonable import json_ready
from vertebrafat.core.labels import level_order_key
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.stats.icc import intraclass_correlation

Group = tuple[str, str]  # (subject, level)


def group_values(
    rows: Sequence[LevelMeasurement], *, column: str = "ff_mean"
) -> dict[Group, list[float]]:
    """Values per (subject, level), ordered by scan id; NaN values left out.

    Raises
    ------
    InputError
        If a (subject, level) has fewer than 2 scans (the subjects and levels are named) or
        the table is empty.
    """
    by_scan: dict[Group, dict[str, float]] = defaultdict(dict)
    for r in rows:
        value = float(getattr(r, column))
        if math.isfinite(value):
            by_scan[(r.subject, r.level)][r.scan] = value
        else:
            by_scan.setdefault((r.subject, r.level), {})
    if not by_scan:
        raise InputError("repeatability needs a table with rows, got none")
    single = sorted(g for g, scans in by_scan.items() if len(scans) < 2)
    if single:
        named = ", ".join(f"{s} {lv}" for s, lv in single[:10])
        more = f" and {len(single) - 10} more" if len(single) > 10 else ""
        raise InputError(f"repeatability needs >= 2 scans per (subject, level); only one "
                         f"scan of: {named}{more}")
    return {g: [scans[s] for s in sorted(scans)] for g, scans in sorted(by_scan.items())}


def precision_error(groups: dict[Group, list[float]]) -> dict[str, float]:
    """RMS-SD, RMS-CV (%) and least significant changes of repeated values (module notes)."""
    sd2, cv2, df, dfc = 0.0, 0.0, 0, 0
    for values in groups.values():
        v = np.asarray(values, dtype=np.float64)
        s2 = float(v.var(ddof=1))
        sd2 += s2 * (v.size - 1)
        df += v.size - 1
        if v.mean() != 0:
            cv2 += s2 / float(v.mean()) ** 2 * (v.size - 1)
            dfc += v.size - 1
    rms_sd = math.sqrt(sd2 / df)
    rms_cv = math.sqrt(cv2 / dfc) * 100 if dfc else math.nan
    return {"rms_sd": rms_sd, "rms_cv_percent": rms_cv, "lsc": 2.77 * rms_sd,
            "lsc_percent": 2.77 * rms_cv, "n_groups": len(groups)}


def mixed_model(groups: dict[Group, list[float]]) -> dict[str, object]:
    """Random-intercept (subject) linear mixed model with level as fixed effect (REML)."""
    import pandas as pd
    import statsmodels.formula.api as smf

    data = pd.DataFrame([(s, lv, x) for (s, lv), values in groups.items() for x in values],
                        columns=["subject", "level", "value"])
    formula = "value ~ C(level)" if data["level"].nunique() > 1 else "value ~ 1"
    nan = {"formula": formula, "subject_variance": math.nan, "residual_variance": math.nan,
           "icc": math.nan, "fixed_effects": {}, "converged": False}
    if data["subject"].nunique() < 2 or np.ptp(data["value"].to_numpy()) == 0:
        return {**nan, "error": "needs >= 2 subjects and values that are not all equal"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = smf.mixedlm(formula, data, groups=data["subject"]).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return {**nan, "error": f"mixed model fit failed: {exc}"}
    var_s, var_e = float(np.asarray(fit.cov_re)[0, 0]), float(fit.scale)
    fixed = {str(k): float(v) for k, v in fit.fe_params.items()}
    converged = bool(fit.converged) and not any("converge" in str(w.message).lower()
                                                for w in caught)
    return {"formula": formula, "subject_variance": var_s, "residual_variance": var_e,
            "icc": var_s / (var_s + var_e) if var_s + var_e > 0 else math.nan,
            "fixed_effects": fixed, "converged": converged}


def _icc_block(groups: dict[Group, list[float]]) -> dict[str, object]:
    k = min(len(v) for v in groups.values())
    table = np.array([v[:k] for v in groups.values()], dtype=np.float64)
    if table.shape[0] < 2:
        nan = {name: math.nan for name in ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")}
        return {"icc": nan, "icc_ci": {n: [math.nan, math.nan] for n in nan}, "icc_scans": k}
    icc, ci = intraclass_correlation(table)
    return {"icc": icc, "icc_ci": {n: list(v) for n, v in ci.items()}, "icc_scans": k}


def _block(groups: dict[Group, list[float]]) -> dict[str, object]:
    return {"n_subjects": len({s for s, _ in groups}),
            "n_measurements": sum(len(v) for v in groups.values()),
            "precision_error": precision_error(groups), **_icc_block(groups),
            "mixed_model": mixed_model(groups)}


def repeatability(
    rows: Sequence[LevelMeasurement], *, column: str = "ff_mean"
) -> dict[str, object]:
    """Precision error, ICCs with CIs and the mixed model, overall and ``per_level``.

    Returns a JSON-ready dict (NaN as None): ``column``, ``n_subjects``, ``n_measurements``,
    ``precision_error``, ``icc``, ``icc_ci``, ``icc_scans``, ``mixed_model``, ``per_level``
    {level: the same blocks}.

    Raises
    ------
    InputError
        If a (subject, level) has fewer than 2 scans (named), or ``column`` is unknown.

    Examples
    --------
    Three subjects scanned twice; every pair differs by 1 pp, so the RMS-SD is sqrt(0.5):

    >>> from vertebrafat.core.schema import LevelMeasurement
    >>> def row(subject, scan, ff):
    ...     return LevelMeasurement(subject, scan, "L1", 20, 500, 5, 8.0, ff, ff, 5.0, ff - 8,
    ...                             ff + 8, 2.0, "all")
    >>> rows = [row(s, c, ff + (c == "2")) for s, ff in (("A", 30), ("B", 40), ("C", 50))
    ...         for c in ("1", "2")]
    >>> result = repeatability(rows)
    >>> round(result["precision_error"]["rms_sd"], 4), result["n_subjects"]
    (0.7071, 3)
    """
    if column not in {"ff_mean", "ff_median", "ff_sd", "ff_p05", "ff_p95", "volume_ml"}:
        raise InputError(f"column must be a numeric FF or volume column, got {column!r}")
    groups = group_values(rows, column=column)
    out: dict[str, object] = {"column": column, **_block(groups)}
    levels = sorted({lv for _, lv in groups}, key=level_order_key)
    out["per_level"] = {lv: _block({g: v for g, v in groups.items() if g[1] == lv})
                        for lv in levels}
    return json_ready(out)  # type: ignore[return-value]
