"""The QC picture: an RGB array, deterministic, each level drawn in its colour, anatomical view."""

from __future__ import annotations

import numpy as np
import pytest

from vertebrafat.core.labels import COLOUR_OF_LABEL
from vertebrafat.measure import bmf_table
from vertebrafat.qc.picture import _view, render_qc

AFFINE = np.array(
    [[-1.0, 0, 0, 0], [0, 0, -1.0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]], dtype=np.float64
)  # axis 0 -> L, rows -> I (row 0 superior), cols -> P (col 0 anterior)


def two_levels() -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((5, 40, 30), dtype=np.uint8)
    labels[1:4, 5:15, 8:20] = 20
    labels[1:4, 20:30, 8:20] = 21
    ff = np.where(labels == 20, 30.0, np.where(labels == 21, 60.0, 5.0)).astype(np.float32)
    return ff, labels


def _has_colour(img: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> bool:
    return bool((np.abs(img.astype(int) - np.array(rgb)).max(axis=2) <= tol).any())


def test_qc_is_an_rgb_array_with_each_level_in_its_colour() -> None:
    ff, labels = two_levels()
    rows = bmf_table(ff, labels, affine=AFFINE, min_voxels=1)
    img = render_qc(ff, labels, rows, affine=AFFINE, title="S1")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape == (900, 800, 3)
    assert _has_colour(img, COLOUR_OF_LABEL[20])
    assert _has_colour(img, COLOUR_OF_LABEL[21])
    assert not _has_colour(img, COLOUR_OF_LABEL[24], tol=3)  # L5 is absent


def test_qc_is_deterministic() -> None:
    ff, labels = two_levels()
    rows = bmf_table(ff, labels, affine=AFFINE, min_voxels=1)
    a = render_qc(ff, labels, rows, affine=AFFINE, slices="mid1")
    b = render_qc(ff, labels, rows, affine=AFFINE, slices="mid1")
    assert np.array_equal(a, b)


def test_qc_without_labels_still_renders() -> None:
    ff, labels = two_levels()
    img = render_qc(ff, np.zeros_like(labels), [], affine=AFFINE, is_ff=False)
    assert img.shape == (900, 800, 3)


@pytest.mark.parametrize(
    "affine",
    [
        pytest.param(AFFINE, id="rows-inferior-cols-posterior"),
        pytest.param(AFFINE @ np.diag([1.0, -1.0, -1.0, 1.0]), id="rows-superior-cols-anterior"),
    ],
)
def test_view_puts_superior_up_and_anterior_left(affine: np.ndarray) -> None:
    vol = np.zeros((3, 4, 5), dtype=np.float32)
    sup_row = 0 if affine[2, 1] < 0 else 3  # the array row that is most superior
    ant_col = 0 if affine[1, 2] < 0 else 4  # the array col that is most anterior
    vol[1, sup_row, ant_col] = 1.0
    plane, extent = _view(vol, 0, 1, affine)
    assert plane.shape == (4, 5)
    assert plane[0, 0] == 1.0
    assert extent == (0.0, 5.0, 0.0, 4.0)
