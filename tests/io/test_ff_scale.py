"""FF scale detection and conversion to percent (io/ff_scale.py)."""

import numpy as np
import pytest

from vertebrafat.core.errors import InputError
from vertebrafat.io.ff_scale import detect_ff_scale, ff_to_percent


@pytest.mark.parametrize(
    ("top", "scale"),
    [pytest.param(0.95, 1.0, id="fraction"), pytest.param(92.0, 100.0, id="percent"),
     pytest.param(930.0, 1000.0, id="ge-x10")],
)
def test_detect_scale(top: float, scale: float) -> None:
    values = np.linspace(0.0, top, 10001)
    assert detect_ff_scale(values, source="x") == scale
    assert ff_to_percent(values, scale, source="x").max() == pytest.approx(top * 100 / scale)


@pytest.mark.parametrize(
    ("top", "hint", "message"),
    [
        pytest.param(8.0, None, "ambiguous", id="between-fraction-and-percent"),
        pytest.param(170.0, None, "ambiguous", id="between-percent-and-permille"),
        pytest.param(297.0, None, "ambiguous", id="percent-stored-x3"),
        pytest.param(40.0, None, "ambiguous", id="percent-without-fat"),
        pytest.param(90.0, 1000.0, "tags say full scale 1000", id="tag-disagrees"),
        pytest.param(0.0, None, "empty", id="all-zero"),
    ],
)
def test_detect_scale_refuses(top: float, hint: float | None, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        detect_ff_scale(np.linspace(0, top, 1001), source="ff.nii.gz", hint=hint)
    assert "ff.nii.gz" in str(info.value)
    assert "--ff-scale" in str(info.value)
