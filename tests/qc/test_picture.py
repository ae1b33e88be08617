"""The QC picture: an RGB array, deterministic, each level drawn in its colour, anatomical view."""

from __future__ import annotations

import numpy as np
import pytest

from vertebrafat.core.labels import COLOUR_OF_LABEL
from vertebrafat.measure import bmf_table
from vertebrafat.qc.picture import COLOUR_BAR, _view, render_qc, strip_layout

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
    assert img.shape == (900, 1280, 3)
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
    assert img.shape == (900, 1280, 3)


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


def test_qc_has_a_grey_colour_bar_from_100_percent_down_to_0() -> None:
    ff, labels = two_levels()
    img = render_qc(ff, labels, bmf_table(ff, labels, affine=AFFINE, min_voxels=1),
                    affine=AFFINE)
    column = img[:, (COLOUR_BAR[0] + COLOUR_BAR[1]) // 2].astype(int)
    frame = np.flatnonzero((column == 0).all(axis=1))  # the black frame (and the 0 % end)
    bar = column[frame[0] + 1: frame[-1]]
    assert (bar[:, 0] == bar[:, 1]).all() and (bar[:, 1] == bar[:, 2]).all()  # grey
    assert bar[0, 0] == 255 and bar[-1, 0] <= 2  # 100 % white on top, 0 % black below
    assert (np.diff(bar[:, 0]) <= 0).all()  # darker all the way down
    assert len(bar) > 300  # as tall as the main panel, not a sliver


@pytest.mark.parametrize(
    ("n", "mm_size", "shape"),
    [
        pytest.param(7, (90.0, 330.0), (2, 4), id="tall-spine-7-slices"),
        pytest.param(5, (90.0, 330.0), (2, 3), id="tall-spine-5-slices"),
        pytest.param(2, (90.0, 330.0), (1, 2), id="tall-spine-2-slices"),
        pytest.param(3, (300.0, 120.0), (3, 1), id="wide-view"),
    ],
)
def test_strip_layout_picks_the_grid_that_shows_slices_largest(
    n: int, mm_size: tuple[float, float], shape: tuple[int, int]
) -> None:
    box = (728.0, 56.0, 1272.0, 870.0)
    cells = strip_layout(n, mm_size, box)
    rows = len({c[1] for c in cells})
    cols = len({c[0] for c in cells})
    assert (rows, cols) == shape
    assert all(box[0] <= c[0] < c[2] <= box[2] + 1e-9 and box[1] <= c[1] < c[3] <= box[3]
               for c in cells)


def test_strip_slices_of_a_tall_spine_are_drawn_large() -> None:
    """A lumbar spine 90 x 330 mm, 7 measured slices: each slice at least 95 x 350 px (it
    was a 45 x 150 px strip)."""
    cell = strip_layout(7, (90.0, 330.0), (728.0, 56.0, 1272.0, 870.0))[0]
    scale = min((cell[2] - cell[0]) / 90.0, (cell[3] - cell[1] - 16) / 330.0)
    assert 90.0 * scale >= 95 and 330.0 * scale >= 350
