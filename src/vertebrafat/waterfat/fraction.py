"""Fat fraction from magnitude water and fat images (pure numpy)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from vertebrafat.core.image import WaterFatImage
from vertebrafat.core.types import Volume


def ff_from_water_fat(water: npt.ArrayLike, fat: npt.ArrayLike) -> Volume:
    """Fat fraction in percent from magnitude water and fat images.

    Uses magnitude discrimination against noise bias (Liu et al. 2007): where fat dominates
    (``F >= W``) FF = F / (W + F), elsewhere FF = 1 - W / (W + F). Both expressions are equal in
    exact arithmetic; the choice keeps the noisy small component in the numerator's complement,
    which removes the bias of magnitude noise at low FF and at high FF.

    Parameters
    ----------
    water, fat : array_like
        Magnitude images of one shape (any units, same scaling).

    Returns
    -------
    ndarray of float32
        FF in percent; 0 where ``W + F == 0``. Negative inputs are taken as magnitudes.
    """
    w = np.abs(np.asarray(water, dtype=np.float64))
    f = np.abs(np.asarray(fat, dtype=np.float64))
    total = w + f
    safe = np.where(total > 0, total, 1.0)
    ff = np.where(f >= w, f / safe, 1.0 - w / safe)
    ff = np.where(total > 0, ff, 0.0)
    return (100.0 * ff).astype(np.float32)


def with_derived_ff(image: WaterFatImage) -> WaterFatImage:
    """``image`` with FF derived from water and fat where it has a fat image but no FF map.

    The derived map is marked ``meta.ff_scale == "derived"``; any other image is returned as is.
    """
    if image.ff is not None or image.fat is None:
        return image
    return replace(image, ff=ff_from_water_fat(image.water, image.fat),
                   meta=replace(image.meta, ff_scale="derived"))


def ff_from_complex(water: npt.ArrayLike, fat: npt.ArrayLike) -> Volume:
    """Fat fraction in percent from complex water and fat, by magnitude discrimination.

    Liu et al. 2007 (Magn Reson Med 58:354): where fat dominates (``|F| >= |W|``) FF =
    ``|F| / |W + F|``, elsewhere ``1 - |W| / |W + F|``. Only the dominant component's magnitude
    and that of the complex sum enter, both large: the noise bias of the small component's
    magnitude (Rician, always positive) stays out, so FF near 0 % and 100 % is unbiased. Water
    and fat of one voxel share their phase, so ``|W + F| = |W| + |F|`` without noise. Where
    noise has turned them so far apart that ``|W + F| < (|W| + |F|) / 2`` (water and fat both
    at the noise level), the sum of magnitudes is the denominator instead, which keeps FF
    within 0-100 % there rather than letting it run to thousands.

    Parameters
    ----------
    water, fat : array_like, complex
        Water and fat signal at ``t = 0`` (same shape, same scaling).

    Returns
    -------
    ndarray of float32
        FF in percent (noise may take it a little below 0 or above 100); 0 where
        ``W + F == 0``.
    """
    w = np.asarray(water, dtype=np.complex128)
    f = np.asarray(fat, dtype=np.complex128)
    aw, af = np.abs(w), np.abs(f)
    total = np.abs(w + f)
    total = np.where(total >= 0.5 * (aw + af), total, aw + af)
    safe = np.where(total > 0, total, 1.0)
    ff = np.where(af >= aw, af / safe, 1.0 - aw / safe)
    return (100.0 * np.where(total > 0, ff, 0.0)).astype(np.float32)
