"""Shared fixtures: tiny water-fat images and the path of the real data set; helpers the
reader tests share."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from vertebrafat.core.errors import VertebrafatError
from vertebrafat.core.image import StudyMeta, WaterFatImage

# Property tests draw the same examples on every run (CI on a clean checkout included): a red
# build then means a change broke something, never that a new random draw was unlucky.
settings.register_profile("vertebrafat", derandomize=True, deadline=None)
settings.load_profile("vertebrafat")

ROOT = Path(__file__).resolve().parents[1]
MYO = ROOT.parent / "shared" / "data" / "myosegmentum"


def sagittal_affine(*, oblique_rad: float = 0.0) -> np.ndarray:
    """Voxel -> RAS for (slices L->R... , rows S->I, cols A->P), slice axis +x (left)."""
    c, s = np.cos(oblique_rad), np.sin(oblique_rad)
    return np.array([
        [4.0, 0.0, 0.0, -10.0],
        [0.0, -1.1 * s, -1.2 * c, 30.0],
        [0.0, -1.1 * c, 1.2 * s, 60.0],
        [0.0, 0.0, 0.0, 1.0],
    ])


@pytest.fixture
def tiny_image() -> WaterFatImage:
    """6 x 32 x 32 water/fat/FF/R2* with values on each vendor's storage grid."""
    rng = np.random.default_rng(7)
    shape = (6, 32, 32)
    water = rng.integers(1, 4000, shape).astype(np.float32)
    fat = rng.integers(1, 4000, shape).astype(np.float32)
    ff = (rng.integers(0, 950, shape) / 10).astype(np.float32)
    r2 = rng.integers(20, 200, shape).astype(np.float32)
    meta = StudyMeta(source="tiny", format="phantom", field_strength_t=3.0)
    return WaterFatImage(water=water, fat=fat, ff=ff, r2star=r2,
                         affine=sagittal_affine(oblique_rad=0.2), meta=meta)


def myo_subjects() -> list[Path]:
    """The MyoSegmenTUM subject folders, or a skip when ../shared/data is absent."""
    if not MYO.is_dir():
        pytest.skip(f"real data not found at {MYO} (../shared/data/myosegmentum absent)")
    return sorted(p for p in MYO.iterdir() if (p / "water.nii.gz").is_file())


def reversed_slices(image: WaterFatImage) -> WaterFatImage:
    """``image`` with an affine whose slice axis runs the other way (the same arrays): a study
    stored in descending slice order."""
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, image.shape[0] - 1
    return dataclasses.replace(image, affine=image.affine @ flip)


def load_outcome(folder: Path) -> WaterFatImage | VertebrafatError:
    """``load_study(folder)``: a sound image, or a one-line VertebrafatError naming the folder
    or a file in it. Any other exception propagates and fails the test."""
    from vertebrafat.workflows.loading import load_study

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped files and repaired headers warn
        try:
            image = load_study(folder)
        except VertebrafatError as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert str(folder) in message, message
            return exc
    for name in image.channels:
        assert np.all(np.isfinite(getattr(image, name))), name
    assert np.all(np.isfinite(image.affine))
    assert abs(np.linalg.det(image.affine[:3, :3])) > 1e-6
    return image
