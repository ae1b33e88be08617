"""The ISMRM fat-water toolbox's ``.mat`` layout (``imDataParams``).

``images`` is complex ``(rows, cols, slices, coils, echoes)``, ``TE`` the echo times (s),
``FieldStrength`` (T), ``PrecessionIsClockwise`` (1/0), optionally ``voxelSize`` (mm: rows,
cols, slices). MATLAB v7.3 files (HDF5) are refused with a message (no HDF5 reader here).
Several coils are combined by the first echo's phase and magnitude (``sum_c conj(s_c1)
s_ck / sqrt(sum_c |s_c1|^2)``), which keeps the phase evolution between echoes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vertebrafat.core.echoes import EchoSeries
from vertebrafat.core.errors import InputError


def read_mat(path: Path, *, field_strength_t: float | None = None) -> EchoSeries:
    """Read ``path`` (see module docstring).

    Raises
    ------
    InputError
        Not a MATLAB file, v7.3, no ``imDataParams``, missing ``images``/``TE``/
        ``FieldStrength`` (unless given), or images not 5D complex.
    """
    import scipy.io

    try:
        raw = scipy.io.loadmat(str(path), squeeze_me=False)
    except NotImplementedError:
        raise InputError(f"{path}: MATLAB v7.3 (HDF5) file; save it with -v7 to read it "
                         "here") from None
    except (ValueError, OSError, TypeError) as exc:
        raise InputError(f"{path}: not a readable MATLAB file ({exc})") from None
    if "imDataParams" not in raw:
        raise InputError(f"{path}: no imDataParams struct (ISMRM fat-water toolbox layout)")
    params = raw["imDataParams"]
    fields = params.dtype.names or ()
    get = _getter(params, fields, path)
    images = np.asarray(get("images"))
    if images.ndim == 4:  # a trailing singleton dimension dropped by MATLAB
        images = images[..., None, :] if images.shape[-1] > 1 else images[..., None]
    if images.ndim != 5 or not np.iscomplexobj(images):
        raise InputError(f"{path}: images must be complex (rows, cols, slices, coils, echoes), "
                         f"got {images.dtype} {images.shape}")
    te = tuple(float(v) for v in np.ravel(get("TE")))
    field = field_strength_t if field_strength_t is not None else float(
        np.ravel(get("FieldStrength"))[0])
    clockwise = bool(np.ravel(get("PrecessionIsClockwise"))[0]) if (
        "PrecessionIsClockwise" in fields) else True
    notes = [] if "PrecessionIsClockwise" in fields else [
        "no PrecessionIsClockwise in the file: clockwise assumed"]
    combined = _combine_coils(images)
    if images.shape[3] > 1:
        notes.append(f"{images.shape[3]} coils combined by the first echo's phase")
    echoes = np.ascontiguousarray(np.transpose(combined, (3, 2, 0, 1))).astype(np.complex64)
    spacing, known = (1.0, 1.0, 1.0), False
    if "voxelSize" in fields:
        vs = np.ravel(get("voxelSize")).astype(float)
        if vs.size == 3 and np.all(vs > 0):
            spacing, known = (float(vs[2]), float(vs[0]), float(vs[1])), True
    if not known:
        notes.append("no voxelSize: 1 mm voxels assumed (maps only, no measurement)")
    affine = np.diag([*spacing, 1.0])
    return EchoSeries(
        echoes=echoes, te_s=te, field_strength_t=field, affine=affine,
        precession_clockwise=clockwise, geometry_known=known, source=str(path),
        format="ismrm-mat", subject=path.stem, scan="1", notes=tuple(notes),
    )


def _getter(params: Any, fields: tuple[str, ...], path: Path) -> Any:
    def get(name: str) -> Any:
        if name not in fields:
            raise InputError(f"{path}: imDataParams has no {name}")
        return params[name][0, 0]

    return get


def _combine_coils(images: np.ndarray) -> np.ndarray:
    """(rows, cols, slices, coils, echoes) -> (rows, cols, slices, echoes)."""
    if images.shape[3] == 1:
        return images[:, :, :, 0, :]
    ref = images[:, :, :, :, :1]
    norm = np.sqrt(np.sum(np.abs(ref) ** 2, axis=3))
    combined = np.sum(np.conj(ref) * images, axis=3)
    return np.where(norm > 0, combined / np.where(norm > 0, norm, 1), 0)
