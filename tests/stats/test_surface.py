"""Surface distances: known offsets with anisotropic spacing, empty-mask rules, brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist

from vertebrafat.core.errors import InputError
from vertebrafat.stats.surface import SurfaceDistance, surface, surface_distance

SPACING = (3.0, 0.5, 0.8)


@pytest.mark.parametrize(
    ("axis", "k"),
    [pytest.param(0, 1, id="slices-1"), pytest.param(0, 2, id="slices-2"),
     pytest.param(1, 3, id="rows-3"), pytest.param(2, 2, id="cols-2")],
)
def test_parallel_planes_k_voxels_apart(axis: int, k: int) -> None:
    """Two 1-voxel planes spanning the array, k voxels apart: every surface voxel is exactly
    k x spacing from the other surface, so HD95 = ASSD = k x spacing[axis]."""
    ref = np.zeros((8, 9, 10), dtype=bool)
    pred = np.zeros_like(ref)
    index_ref, index_pred = [slice(None)] * 3, [slice(None)] * 3
    index_ref[axis], index_pred[axis] = 2, 2 + k
    ref[tuple(index_ref)] = True
    pred[tuple(index_pred)] = True
    d = surface_distance(ref, pred, spacing_mm=SPACING)
    assert d.hd95_mm == pytest.approx(k * SPACING[axis])
    assert d.assd_mm == pytest.approx(k * SPACING[axis])


@pytest.mark.parametrize("k", [pytest.param(1, id="k1"), pytest.param(2, id="k2")])
def test_cubes_offset_by_k_voxels_hausdorff(k: int) -> None:
    """A 4-voxel cube shifted by k slices (3 mm each): the Hausdorff distance (percentile 100)
    is k x 3 mm; identical cubes give 0."""
    ref = np.zeros((12, 8, 8), dtype=bool)
    ref[2:6, 2:6, 2:6] = True
    pred = np.roll(ref, k, axis=0)
    assert surface_distance(ref, pred, spacing_mm=SPACING, percentile=100).hd95_mm == \
        pytest.approx(3.0 * k)
    assert surface_distance(ref, ref, spacing_mm=SPACING) == SurfaceDistance(0.0, 0.0)


def test_empty_masks() -> None:
    empty, full = np.zeros((3, 3, 3), bool), np.ones((3, 3, 3), bool)
    assert surface_distance(empty, empty, spacing_mm=(1, 1, 1)) == SurfaceDistance(0.0, 0.0)
    d = surface_distance(full, empty, spacing_mm=(1, 1, 1))
    assert math.isnan(d.hd95_mm) and math.isnan(d.assd_mm)


def test_surface_of_a_cube_is_its_shell_and_the_border_counts_as_outside() -> None:
    cube = np.zeros((5, 5, 5), bool)
    cube[1:4, 1:4, 1:4] = True
    assert surface(cube).sum() == 26  # 27 minus the centre voxel
    assert surface(np.ones((3, 3, 3), bool)).sum() == 26


def test_bad_spacing_is_an_input_error() -> None:
    m = np.ones((2, 2, 2), bool)
    with pytest.raises(InputError, match="spacing_mm"):
        surface_distance(m, m, spacing_mm=(1.0, 1.0))


@settings(max_examples=30, deadline=None)
@given(arrays(np.bool_, (4, 5, 5)), arrays(np.bool_, (4, 5, 5)),
       st.tuples(*[st.sampled_from([0.5, 1.0, 2.5])] * 3))
def test_matches_brute_force_point_distances(ref: np.ndarray, pred: np.ndarray,
                                             spacing: tuple[float, float, float]) -> None:
    if not ref.any() or not pred.any():
        return
    a = np.argwhere(surface(ref)) * spacing
    b = np.argwhere(surface(pred)) * spacing
    dist = cdist(a, b)
    d_ab, d_ba = dist.min(axis=1), dist.min(axis=0)
    got = surface_distance(ref, pred, spacing_mm=spacing)
    assert got.hd95_mm == pytest.approx(np.percentile(np.concatenate([d_ab, d_ba]), 95))
    assert got.assd_mm == pytest.approx((d_ab.mean() + d_ba.mean()) / 2)
    assert got == surface_distance(pred, ref, spacing_mm=spacing)
