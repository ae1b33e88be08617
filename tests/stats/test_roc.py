"""ROC AUC / DeLong / average precision: Hanley & McNeil 1982, sklearn and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from vertebrafat.core.errors import InputError
from vertebrafat.stats.roc import delong_from_counts, roc_analysis, score_counts

# Hanley & McNeil (1982) Table 1: 109 CT images rated 1 (definitely normal) .. 5
NORMAL = [33, 6, 6, 11, 2]
ABNORMAL = [3, 2, 2, 11, 33]


def hanley_mcneil() -> tuple[np.ndarray, np.ndarray]:
    ratings = np.arange(1, 6)
    scores = np.concatenate([np.repeat(ratings, NORMAL), np.repeat(ratings, ABNORMAL)])
    truth = np.r_[np.zeros(sum(NORMAL), bool), np.ones(sum(ABNORMAL), bool)]
    return scores.astype(np.float64), truth


def brute_force_delong(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """DeLong (1988) from the full m x n placement kernel, O(mn)."""
    x, y = scores[truth], scores[~truth]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    auc = psi.mean()
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(auc), float(math.sqrt(v10.var(ddof=1) / x.size + v01.var(ddof=1) / y.size))


def test_hanley_mcneil_1982_area() -> None:
    scores, truth = hanley_mcneil()
    r = roc_analysis(scores, truth)
    assert (r.n_positive, r.n_negative) == (51, 58)
    assert round(r.auc, 3) == 0.893  # published ROC area
    auc, se = brute_force_delong(scores, truth)
    assert r.auc == pytest.approx(auc)
    assert r.auc_se == pytest.approx(se)  # 0.0307 (Hanley-McNeil's approximation: 0.032)
    assert r.auc_ci == pytest.approx((r.auc - 1.959964 * se, r.auc + 1.959964 * se), abs=1e-6)
    assert r.pr_auc == pytest.approx(average_precision_score(truth, scores))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 60), st.integers(1, 6))
def test_matches_sklearn_and_brute_force_with_ties(seed: int, n: int, levels: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.4
    truth[:2], truth[-2:] = True, False  # >= 2 of each class: the DeLong SE is defined
    scores = rng.integers(0, levels + 1, n) / levels
    r = roc_analysis(scores, truth)
    assert r.auc == pytest.approx(roc_auc_score(truth, scores))
    assert r.pr_auc == pytest.approx(average_precision_score(truth, scores))
    assert r.auc_se == pytest.approx(brute_force_delong(scores, truth)[1])
    # bins at the score grid give the same numbers; summing per-part counts pools exactly
    binned = roc_analysis(scores, truth, bins=levels + 1)
    assert binned.auc == pytest.approx(r.auc)
    half = n // 2
    p1, n1 = score_counts(scores[:half], truth[:half], bins=levels + 1)
    p2, n2 = score_counts(scores[half:], truth[half:], bins=levels + 1)
    assert delong_from_counts(p1 + p2, n1 + n2)[0] == pytest.approx(r.auc)


def test_one_class_only_gives_nan() -> None:
    r = roc_analysis(np.array([0.1, 0.9]), np.array([True, True]))
    assert math.isnan(r.auc) and math.isnan(r.auc_ci[0]) and r.pr_auc == pytest.approx(1.0)


def test_curves_start_at_origin_and_end_at_one() -> None:
    scores, truth = hanley_mcneil()
    r = roc_analysis(scores, truth)
    assert (r.fpr[0], r.tpr[0], r.fpr[-1], r.tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert len(r.fpr) == 6  # origin + 5 rating thresholds


@pytest.mark.parametrize(
    ("scores", "bins", "match"),
    [pytest.param([0.2, np.nan], None, "NaN", id="nan"),
     pytest.param([0.2, 1.5], 10, r"\[0, 1\]", id="out-of-range-binned")],
)
def test_bad_scores_are_input_errors(scores: list[float], bins: int | None, match: str) -> None:
    with pytest.raises(InputError, match=match):
        score_counts(np.array(scores), np.array([True, False]), bins=bins)
