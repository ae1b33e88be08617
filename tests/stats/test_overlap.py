"""Overlap metrics: exact counts on tiny arrays, the empty-mask rules, slice selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import cohen_kappa_score, f1_score, jaccard_score

from vertebrafat.core.errors import InputError
from vertebrafat.stats.overlap import (
    Confusion,
    confusion,
    dice,
    iou,
    per_slice_scores,
    scores,
    select_slices,
)


def test_confusion_counts_on_a_tiny_array() -> None:
    ref = np.array([[1, 1, 1, 0, 0, 0, 0, 0, 0, 0]], dtype=bool)
    pred = np.array([[0, 1, 1, 1, 1, 0, 0, 0, 0, 0]], dtype=bool)
    c = confusion(ref, pred)
    assert c == Confusion(tp=2, fp=2, tn=5, fn=1)
    s = scores(c)
    assert s.sensitivity == pytest.approx(2 / 3)
    assert s.specificity == pytest.approx(5 / 7)
    assert s.precision == pytest.approx(0.5)
    assert s.accuracy == pytest.approx(0.7)
    assert s.dice == s.f1 == pytest.approx(4 / 7)
    assert s.iou == pytest.approx(2 / 5)
    # po = 0.7, pe = (4*3 + 6*7) / 100 = 0.54 -> kappa = 0.16 / 0.46
    assert s.kappa == pytest.approx(0.16 / 0.46)


@pytest.mark.parametrize(
    ("ref", "pred", "expected"),
    [
        pytest.param([0, 0, 0], [0, 0, 0], {"dice": 1.0, "iou": 1.0, "sensitivity": math.nan,
                                             "precision": math.nan, "specificity": 1.0,
                                             "kappa": math.nan}, id="both-empty"),
        pytest.param([1, 1, 0], [0, 0, 0], {"dice": 0.0, "iou": 0.0, "sensitivity": 0.0,
                                             "precision": math.nan, "specificity": 1.0,
                                             "kappa": 0.0}, id="prediction-empty"),
        pytest.param([0, 0, 0], [0, 1, 0], {"dice": 0.0, "iou": 0.0, "sensitivity": math.nan,
                                             "precision": 0.0, "specificity": 2 / 3,
                                             "kappa": 0.0}, id="reference-empty"),
        pytest.param([1, 1, 1], [1, 1, 1], {"dice": 1.0, "iou": 1.0, "sensitivity": 1.0,
                                             "precision": 1.0, "specificity": math.nan,
                                             "kappa": math.nan}, id="both-full"),
    ],
)
def test_empty_mask_rules(ref: list[int], pred: list[int], expected: dict[str, float]) -> None:
    s = scores(confusion(np.array(ref, dtype=bool), np.array(pred, dtype=bool)))
    for name, value in expected.items():
        got = getattr(s, name)
        assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value), name


def test_shape_mismatch_is_an_input_error_quoting_both_shapes() -> None:
    with pytest.raises(InputError, match=r"\(2, 3\).*\(3, 2\)"):
        confusion(np.zeros((2, 3), bool), np.zeros((3, 2), bool))


masks = arrays(np.bool_, st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)))


@settings(max_examples=60, deadline=None)
@given(masks, st.data())
def test_dice_symmetric_in_unit_interval_and_matches_sklearn(ref: np.ndarray,
                                                              data: st.DataObject) -> None:
    pred = data.draw(arrays(np.bool_, ref.shape))
    d = dice(ref, pred)
    assert d == dice(pred, ref)
    assert 0.0 <= d <= 1.0
    assert iou(ref, pred) == pytest.approx(d / (2 - d))
    if ref.any() or pred.any():
        assert d == pytest.approx(f1_score(ref.ravel(), pred.ravel(), zero_division=0))
        assert iou(ref, pred) == pytest.approx(jaccard_score(ref.ravel(), pred.ravel()))
    k = scores(confusion(ref, pred)).kappa
    if not math.isnan(k):
        assert k == pytest.approx(cohen_kappa_score(ref.ravel(), pred.ravel()), abs=1e-9)


def test_per_slice_scores_skip_slices_empty_in_both() -> None:
    ref = np.zeros((4, 2, 2), dtype=bool)
    pred = np.zeros_like(ref)
    ref[1, 0, :] = True  # slice 1: ref 2 voxels, pred 1 of them -> dice 2/3
    pred[1, 0, 0] = True
    ref[2] = pred[2] = True  # slice 2: identical -> dice 1
    out = per_slice_scores(ref, pred)
    np.testing.assert_array_equal(out["slice"], [1, 2])
    np.testing.assert_allclose(out["dice"], [2 / 3, 1.0])
    np.testing.assert_allclose(out["sensitivity"], [0.5, 1.0])
    assert math.isnan(out["specificity"][1])  # no background on slice 2


@pytest.mark.parametrize(
    ("rule", "annotated", "expected"),
    [
        pytest.param("all", None, [1, 1, 1, 1, 1, 1, 1, 1], id="all"),
        pytest.param("annotated", None, [0, 1, 1, 1, 1, 1, 0, 0], id="foreground"),
        pytest.param("annotated", [0, 3], [1, 0, 0, 1, 0, 0, 0, 0], id="listed"),
        pytest.param("mid3", None, [0, 0, 0, 1, 1, 1, 0, 0], id="mid3"),
        pytest.param("mid9", None, [0, 1, 1, 1, 1, 1, 0, 0], id="fewer-than-n"),
    ],
)
def test_select_slices(rule: str, annotated: list[int] | None, expected: list[int]) -> None:
    ref = np.zeros((8, 3, 3), dtype=bool)
    ref[1:5, 0, 0] = True
    ref[5, :, :] = True  # 9 voxels on slice 5
    counts = ref.sum(axis=(1, 2))
    assert counts.tolist() == [0, 1, 1, 1, 1, 9, 0, 0]
    # centroid (1+2+3+4+45)/13 = 55/13 = 4.23 -> mid3 starts at floor(4.23 - 1 + 0.5) = 3
    keep = select_slices(ref, slices=rule, annotated=annotated)
    assert keep.astype(int).tolist() == expected


def test_select_slices_rejects_unknown_rules_and_bad_indices() -> None:
    ref = np.ones((3, 2, 2), dtype=bool)
    with pytest.raises(InputError, match="mid5"):
        select_slices(ref, slices="middle")
    with pytest.raises(InputError, match=r"\[7\]"):
        select_slices(ref, slices="annotated", annotated=[0, 7])
