"""WaterFatImage validates shapes, dtypes and the affine at construction."""

import numpy as np
import pytest

from vertebrafat.core.errors import GeometryError, InputError
from vertebrafat.core.image import WaterFatImage, spacing_from_affine


def _vol(shape: tuple[int, ...] = (3, 4, 5)) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


def test_spacing_from_oblique_affine() -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    aff = np.array([[0, 0, -1.2, 10], [c * 4, 0, 0, 0], [s * 4, 0.8, 0, 0], [0, 0, 0, 1.0]])
    assert spacing_from_affine(aff) == pytest.approx((4.0, 0.8, 1.2))


def test_channels_in_canonical_order() -> None:
    img = WaterFatImage(water=_vol(), affine=np.eye(4), r2star=_vol(), ff=_vol())
    assert img.channels == ("water", "ff", "r2star")
    assert img.shape == (3, 4, 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"water": _vol((4, 5))}, InputError, "3D", id="2d-water"),
        pytest.param({"fat": _vol((3, 4, 6))}, GeometryError, "fat has shape", id="fat-shape"),
        pytest.param({"ff": np.zeros((3, 4, 5))}, InputError, "float32", id="ff-float64"),
        pytest.param({"affine": np.zeros((4, 4))}, GeometryError, "invertible", id="singular"),
    ],
)
def test_invalid_images_are_refused(kwargs: dict, error: type, message: str) -> None:
    args = {"water": _vol(), "affine": np.eye(4)} | kwargs
    with pytest.raises(error, match=message):
        WaterFatImage(**args)
