"""ICCs: Shrout & Fleiss (1979) Table 2 and pingouin on random tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertebrafat.core.errors import InputError
from vertebrafat.stats.icc import ICC_NAMES, intraclass_correlation, mean_squares

# Shrout & Fleiss (1979) Table 2: 6 targets rated by 4 judges
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
                          [6, 2, 4, 7]], dtype=float)
PUBLISHED = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62,
             "ICC3k": 0.91}


def test_shrout_fleiss_1979_table_2() -> None:
    icc, ci = intraclass_correlation(SHROUT_FLEISS)
    assert {k: round(v, 2) for k, v in icc.items()} == PUBLISHED
    ms = mean_squares(SHROUT_FLEISS)  # published ANOVA: BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02
    assert [round(ms[k], 2) for k in ("MSR", "MSW", "MSC", "MSE")] == [11.24, 6.26, 32.49, 1.02]
    assert ci["ICC3"] == pytest.approx((0.34, 0.95), abs=0.005)


def pingouin_icc(table: np.ndarray) -> pd.DataFrame:
    n, k = table.shape
    df = pd.DataFrame({"target": np.repeat(np.arange(n), k), "rater": np.tile(np.arange(k), n),
                       "score": table.ravel()})
    return pg.intraclass_corr(df, targets="target", raters="rater", ratings="score")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 12), st.integers(2, 5))
def test_matches_pingouin(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    table = rng.normal(0, 2, (n, 1)) + rng.normal(0, 1, (1, k)) + rng.normal(0, 1, (n, k))
    icc, ci = intraclass_correlation(table)
    ref = pingouin_icc(table)
    ci_col = "CI95" if "CI95" in ref.columns else "CI95%"
    for name, (_, r) in zip(ICC_NAMES, ref.iterrows(), strict=True):
        assert icc[name] == pytest.approx(r["ICC"], abs=1e-9)
        lo, hi = r[ci_col]  # pingouin rounds its CIs to 2 decimals; both give NaN where the
        # F-based bound is undefined (e.g. seed 1464, 3 x 2: ICC2's lower bound)
        assert ci[name][0] == pytest.approx(lo, abs=0.0051, nan_ok=True)
        assert ci[name][1] == pytest.approx(hi, abs=0.0051, nan_ok=True)


def test_constant_table_gives_nan_and_bad_tables_fail() -> None:
    icc, _ = intraclass_correlation(np.full((4, 2), 3.0))
    assert all(math.isnan(v) for v in icc.values())
    with pytest.raises(InputError, match=r"\(1, 3\)"):
        intraclass_correlation(np.ones((1, 3)))
