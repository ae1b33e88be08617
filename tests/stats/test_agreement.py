"""Bland-Altman: the 1986 PEFR example, 1999 CIs, pairing of tables, edge cases, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from vertebrafat.cli import main
from vertebrafat.core.errors import InputError
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.io.table import save_table
from vertebrafat.stats.agreement import agreement, bland_altman, pair_rows

# Bland & Altman (1986) Lancet i:307, Table 1: PEFR (l/min) of 17 subjects, first readings
WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI_WRIGHT = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350,
               451]


def test_bland_altman_1986_pefr_example() -> None:
    ba = bland_altman(WRIGHT, MINI_WRIGHT)
    assert ba.n == 17
    assert round(ba.bias, 1) == -2.1  # published mean difference
    assert round(ba.sd, 1) == 38.8  # published SD of the differences
    t = stats.t.ppf(0.975, 16)
    assert ba.bias_ci == pytest.approx((-2.1176 - t * 38.7651 / math.sqrt(17),
                                        -2.1176 + t * 38.7651 / math.sqrt(17)), abs=1e-3)
    assert ba.loa == pytest.approx((-2.1176 - 1.96 * 38.7651, -2.1176 + 1.96 * 38.7651),
                                   abs=1e-3)
    se = math.sqrt(3 * 38.7651**2 / 17)  # Bland & Altman 1999: SE of a limit
    assert ba.loa_ci[0] == pytest.approx((ba.loa[0] - t * se, ba.loa[0] + t * se), abs=1e-3)
    assert ba.loa_ci[1] == pytest.approx((ba.loa[1] - t * se, ba.loa[1] + t * se), abs=1e-3)
    assert ba.pct_outside == pytest.approx(100 / 17)  # subject 15: -81 < -78.1


def test_constant_difference_and_single_pair() -> None:
    ba = bland_altman([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert (ba.bias, ba.sd, ba.loa, ba.pct_outside) == (0.5, 0.0, (0.5, 0.5), 0.0)
    assert ba.slope == pytest.approx(0.0)
    one = bland_altman([2.0], [1.0])
    assert one.bias == 1.0 and math.isnan(one.sd) and math.isnan(one.loa[0])
    with pytest.raises(InputError, match="at least one pair"):
        bland_altman([], [])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(5, 40))
def test_proportional_bias_matches_statsmodels_ols(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(40, 10, n)
    b = a * rng.uniform(0.8, 1.2) + rng.normal(0, 2, n)
    ba = bland_altman(a, b)
    fit = sm.OLS(a - b, sm.add_constant((a + b) / 2)).fit()
    assert ba.slope == pytest.approx(fit.params[1])
    assert ba.intercept == pytest.approx(fit.params[0])
    assert ba.slope_p == pytest.approx(fit.pvalues[1], rel=1e-6)
    assert ba.sd == pytest.approx(np.std(a - b, ddof=1))


def row(subject: str, level: str, ff: float, scan: str = "1") -> LevelMeasurement:
    return LevelMeasurement(subject, scan, level, 20, 10, 5, 1.0, ff, ff, 1.0, ff, ff, 1.0,
                            "all")


def test_pairing_lists_unpaired_and_missing_rows() -> None:
    a = [row("s1", "L1", 10), row("s1", "L2", 11), row("s2", "L1", 12), row("s3", "L1", 9)]
    b = [row("s1", "L1", 11), row("s1", "L2", math.nan), row("s2", "L1", 12),
         row("s4", "L5", 3)]
    p = pair_rows(a, b)
    assert p.keys == (("s1", "1", "L1"), ("s2", "1", "L1"))
    assert p.unpaired_a == (("s3", "1", "L1"),)
    assert p.unpaired_b == (("s4", "1", "L5"),)
    assert p.missing == (("s1", "1", "L2"),)
    with pytest.raises(InputError, match="more than once"):
        pair_rows(a + a[:1], b)
    with pytest.raises(InputError, match="column"):
        pair_rows(a, b, column="subject")


def test_agreement_report_and_per_level() -> None:
    a = [row(f"s{i}", lv, 10 + i + k) for i in range(4) for k, lv in enumerate(["L1", "L2"])]
    b = [row(f"s{i}", lv, 10 + i + k - (1 if lv == "L1" else 2 * (i % 2)))
         for i in range(4) for k, lv in enumerate(["L1", "L2"])]
    out = agreement(a, b)
    assert out["n"] == 8 and out["bias"] == pytest.approx(1.0)
    per_level = out["per_level"]
    assert list(per_level) == ["L1", "L2"]
    assert per_level["L1"]["bias"] == 1.0 and per_level["L1"]["sd"] == 0.0
    assert per_level["L2"]["bias"] == pytest.approx(1.0)  # differences 0, 2, 0, 2
    assert out["unpaired"] == {"a": [], "b": [], "missing": []}
    with pytest.raises(InputError, match="no \\(subject, scan, level\\) in common"):
        agreement(a, [row("x", "L1", 1)])


def test_cli_agreement_json_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> (
    None
):
    levels = ["L1", "L2", "L3"]
    a = [row(f"s{i:02d}", lv, float(w)) for i, w in enumerate(WRIGHT) for lv in levels[:1]]
    b = [row(f"s{i:02d}", lv, float(m)) for i, m in enumerate(MINI_WRIGHT) for lv in levels[:1]]
    b.append(row("extra", "L3", 5.0))
    save_table(a, tmp_path / "a.csv")
    save_table(b, tmp_path / "b.csv")
    code = main(["agreement", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--json",
                 "--plot", str(tmp_path / "ba.png")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 17 and round(out["bias"], 1) == -2.1 and round(out["sd"], 1) == 38.8
    assert out["unpaired"]["b"] == [["extra", "1", "L3"]]
    assert (tmp_path / "ba.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "ba_L1.png").is_file()
    assert main(["agreement", str(tmp_path / "a.csv"), str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
