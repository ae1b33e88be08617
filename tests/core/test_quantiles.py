"""core/quantiles.py: the percentile of the positive voxels equals numpy's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vertebrafat.core.quantiles import positive_percentile


def _numpy(values: np.ndarray, q: float) -> np.floating:
    return np.percentile(values[values > 0], q, overwrite_input=True)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6000), st.integers(0, 3),
       st.sampled_from([0.0, 1.0, 50.0, 99.0, 99.9, 100.0]), st.integers(0, 2**32 - 1))
def test_equals_numpy_on_ties_negatives_and_zeros(n: int, kind: int, q: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = [rng.random(n), rng.integers(-3, 6, n), rng.standard_normal(n) * 100,
              np.round(rng.random(n) * 10, 1)][kind].astype(np.float32)
    if not (values > 0).any():
        assert positive_percentile(values, q) is None
        return
    got, want = positive_percentile(values, q), _numpy(values, q)
    assert type(got) is type(want) and got == want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_numpy_on_a_volume_and_takes_the_fast_path(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    volume = ((rng.random((6, 96, 96)) ** 3) * 1000).astype(dtype)
    volume[volume < 100] = 0  # half the voxels empty, as outside a body
    want = _numpy(volume, 99.0)
    seen: list[tuple[int, bool]] = []
    real = np.percentile

    def spy(a: np.ndarray, *args: object, **kw: object) -> object:
        seen.append((a.size, bool(np.all(np.diff(a) >= 0))))  # before numpy partitions it
        return real(a, *args, **kw)

    monkeypatch.setattr(np, "percentile", spy)
    assert positive_percentile(volume, 99.0) == want
    # one call, on a sorted stand-in as long as the positives (the plain path passes the
    # positives themselves, unsorted)
    assert seen == [(int((volume > 0).sum()), True)]
