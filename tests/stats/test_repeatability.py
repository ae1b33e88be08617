"""Test-retest: precision error by hand, ICC vs pingouin, mixed model vs ANOVA, errors, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertebrafat.cli import main
from vertebrafat.core.errors import InputError
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.io.table import save_table
from vertebrafat.stats.icc import intraclass_correlation
from vertebrafat.stats.repeatability import group_values, precision_error, repeatability


def row(subject: str, scan: str, level: str, ff: float) -> LevelMeasurement:
    return LevelMeasurement(subject, scan, level, 20, 10, 5, 1.0, ff, ff, 1.0, ff, ff, 1.0,
                            "all")


def test_precision_error_by_hand() -> None:
    # groups: (10, 12) SD sqrt(2), CV sqrt(2)/11; (20, 20, 23) SD sqrt(3), CV sqrt(3)/21
    groups = {("a", "L1"): [10.0, 12.0], ("b", "L1"): [20.0, 20.0, 23.0]}
    pe = precision_error(groups)
    assert pe["rms_sd"] == pytest.approx(math.sqrt((2 * 1 + 3 * 2) / 3))
    assert pe["rms_cv_percent"] == pytest.approx(
        100 * math.sqrt(((2 / 121) * 1 + (3 / 441) * 2) / 3))
    assert pe["lsc"] == pytest.approx(2.77 * pe["rms_sd"])


def test_single_scan_is_an_error_naming_the_subjects() -> None:
    rows = [row("s1", "1", "L1", 10), row("s1", "2", "L1", 11), row("s2", "1", "L1", 12),
            row("s3", "1", "L2", 9), row("s3", "2", "L2", math.nan)]
    with pytest.raises(InputError, match="only one scan of: s2 L1, s3 L2"):
        group_values(rows)


def cohort(seed: int, n_subjects: int = 8, levels: int = 3, scans: int = 2) -> list[
    LevelMeasurement
]:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        base = rng.normal(40, 8)
        for li in range(levels):
            for sc in range(scans):
                rows.append(row(f"s{s}", str(sc + 1), f"L{li + 1}",
                                base + 2 * li + rng.normal(0, 1.5)))
    return rows


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_per_level_mixed_model_icc_equals_anova_icc1(seed: int) -> None:
    """Balanced one-way random-effects data: REML variance components are the ANOVA ones,
    so the implied ICC equals ICC(1,1) whenever the between-subject estimate is positive."""
    out = repeatability(cohort(seed))
    level = out["per_level"]["L1"]
    table = np.array([[r.ff_mean for r in cohort(seed) if r.subject == f"s{s}" and
                       r.level == "L1"] for s in range(8)])
    icc, _ = intraclass_correlation(table)
    assert level["icc"]["ICC1"] == pytest.approx(icc["ICC1"])
    if icc["ICC1"] > 0.05:
        assert level["mixed_model"]["icc"] == pytest.approx(icc["ICC1"], abs=1e-4)


def test_repeatability_report_shape_and_values() -> None:
    out = repeatability(cohort(3))
    assert out["n_subjects"] == 8 and out["n_measurements"] == 48 and out["icc_scans"] == 2
    assert set(out["icc"]) == {"ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"}
    assert all(lo <= out["icc"][k] <= hi for k, (lo, hi) in out["icc_ci"].items())
    mm = out["mixed_model"]
    assert mm["formula"] == "value ~ C(level)" and mm["converged"]
    assert mm["fixed_effects"]["C(level)[T.L3]"] == pytest.approx(4.0, abs=1.5)
    assert 0.9 < mm["icc"] < 1.0  # subject SD 8 vs noise SD 1.5
    assert out["precision_error"]["rms_sd"] == pytest.approx(1.5, rel=0.35)
    assert list(out["per_level"]) == ["L1", "L2", "L3"]


def test_constant_values_give_nan_not_a_crash() -> None:
    rows = [row(f"s{s}", str(sc), "L1", 30.0) for s in range(3) for sc in (1, 2)]
    out = repeatability(rows)
    assert out["precision_error"]["rms_sd"] == 0.0
    assert out["icc"]["ICC1"] is None
    assert out["mixed_model"]["icc"] is None and "error" in out["mixed_model"]


def test_cli_repeatability(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_table(cohort(5), tmp_path / "t.csv")
    assert main(["repeatability", str(tmp_path / "t.csv"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["precision_error"]["lsc"] == pytest.approx(2.77 * out["precision_error"]["rms_sd"])
    save_table([r for r in cohort(5) if not (r.subject == "s2" and r.scan == "2")],
               tmp_path / "bad.csv")
    assert main(["repeatability", str(tmp_path / "bad.csv")]) == 2
    assert "s2 L1" in capsys.readouterr().err
