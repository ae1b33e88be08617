"""``read_study``: one water-fat study (DICOM folder or NIfTI files) -> :class:`WaterFatImage`.

NIfTI: a folder with files named by role (``water``, ``fat``, ``ff``, ``r2star``; ``.nii`` or
``.nii.gz``), a dcm2niix folder whose JSON sidecars name the roles
(:mod:`vertebrafat.io.dcm2niix`), a single water file, or explicit paths; in any axis order
(:func:`vertebrafat.io.orientation.read_slices_first`). DICOM: a folder searched recursively
(see :mod:`vertebrafat.io.dicom.read`). An optional ``study.json`` (``{"subject": .., "scan":
..}``) in a NIfTI folder names the study; otherwise the subject is the folder name, scan "1".
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.core.image import MAP_ROLES, SeriesInfo, StudyMeta, WaterFatImage
from vertebrafat.core.types import Volume
from vertebrafat.io.dcm2niix import read_sidecar, sidecar_roles
from vertebrafat.io.dicom.roles import vendor_of
from vertebrafat.io.ff_scale import detect_ff_scale, ff_to_percent
from vertebrafat.io.nifti import nifti_files
from vertebrafat.io.orientation import check_nifti_sagittal, read_on_grid, read_slices_first

PathLike = str | os.PathLike[str]


def read_study(
    path: PathLike | None,
    *,
    ff_scale: float | None = None,
    series: Mapping[str, int] | None = None,
    allow_orientation: bool = False,
    water: PathLike | None = None,
    fat: PathLike | None = None,
    ff: PathLike | None = None,
    r2star: PathLike | None = None,
) -> WaterFatImage:
    """Load one study as float32 volumes ``(slices, rows, cols)`` on one voxel grid.

    Parameters
    ----------
    path : path or None
        DICOM folder, NIfTI folder, or a single NIfTI file (taken as the water image). May be
        None when ``water`` is given.
    ff_scale : {1, 100, 1000}, optional
        Full scale of the stored FF map; detected from tags and values when omitted.
    series : mapping, optional
        DICOM only: ``{"water": 5}`` picks series number 5 where several could be water.
    allow_orientation : bool
        Accept a non-sagittal acquisition instead of refusing it.
    water, fat, ff, r2star : path, optional
        Explicit NIfTI files; they take precedence over files found in ``path``.

    Returns
    -------
    WaterFatImage
        FF in percent as stored (``None`` when the study has no FF map: deriving it from water
        and fat is :func:`vertebrafat.workflows.loading.load_study`'s job), R2* in 1/s.

    Raises
    ------
    InputError
        Missing path, empty folder, no readable image, no water image, NaN/inf values, 2D
        image, ambiguous FF scale, ambiguous series.
    GeometryError
        Roles on different voxel grids, or a non-sagittal acquisition without
        ``allow_orientation``.
    """
    explicit = {r: p for r, p in zip(MAP_ROLES, (water, fat, ff, r2star), strict=True) if p}
    if path is None and not explicit:
        raise InputError("no study given: pass a folder, a NIfTI file or --water")
    base = Path(path) if path is not None else Path(str(explicit["water"])).parent
    if path is not None and not base.exists():
        raise InputError(f"{base}: no such file or folder")
    files: dict[str, PathLike] = dict(explicit)
    if base.is_file():
        files.setdefault("water", base)
    elif not explicit:
        found = _role_files(base) or sidecar_roles(base)
        if not found and nifti_files(base):
            raise InputError(
                f"{base}: NIfTI files but no water image (expected water.nii.gz, a dcm2niix "
                "JSON sidecar naming the water series, or --water)"
            )
        if not found:
            from vertebrafat.io.dicom.read import load_dicom_study

            return load_dicom_study(
                base, ff_scale=ff_scale, series=series, allow_orientation=allow_orientation
            )
        files = dict(found)
    return _load_nifti_study(base, files, ff_scale=ff_scale, allow_orientation=allow_orientation)


def _role_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for role in MAP_ROLES:
        for ext in (".nii.gz", ".nii"):
            candidate = folder / f"{role}{ext}"
            if candidate.is_file():
                found[role] = candidate
                break
    return found


def _load_nifti_study(
    base: Path, files: Mapping[str, PathLike], *, ff_scale: float | None, allow_orientation: bool
) -> WaterFatImage:
    if "water" not in files:
        raise InputError(f"{base}: no water image (expected water.nii.gz or --water)")
    raw, affine, axes = read_slices_first(files["water"])
    volumes: dict[str, Volume] = {"water": cast(Volume, raw)}  # image mode: float32
    for role in MAP_ROLES[1:]:
        if role in files:
            volumes[role] = cast(Volume, read_on_grid(
                files[role], volumes["water"].shape, affine,
                grid_of=f"the water image {files['water']}"))
    check_nifti_sagittal(affine, source=str(files["water"]),
                         allow_orientation=allow_orientation)
    scale: float | str | None = None
    ff_pct: Volume | None = None
    if "ff" in volumes:
        src = str(files["ff"])
        scale = ff_scale if ff_scale is not None else detect_ff_scale(volumes["ff"], source=src)
        ff_pct = ff_to_percent(volumes["ff"], scale, source=src)
    subject, scan = _study_identity(base)
    sidecar = read_sidecar(Path(files["water"]))
    strength = sidecar.get("MagneticFieldStrength")
    meta = StudyMeta(
        source=str(base), format="nifti", ff_scale=scale, subject=subject, scan=scan,
        file_axes=axes, vendor=vendor_of(str(sidecar.get("Manufacturer", ""))),
        field_strength_t=float(strength) if isinstance(strength, (int, float)) else None,
        series=tuple(
            SeriesInfo(role=r, source=str(files[r]), n_slices=volumes[r].shape[0])
            for r in volumes
        ),
    )
    return WaterFatImage(
        water=volumes["water"], affine=affine, fat=volumes.get("fat"), ff=ff_pct,
        r2star=volumes.get("r2star"), meta=meta,
    )


def study_identity(folder: Path) -> tuple[str, str]:
    """(subject, scan) of a study folder: its ``study.json`` (``{"subject": .., "scan": ..}``,
    as the phantom writes it), else the folder's name and scan ``"1"``.

    Raises
    ------
    InputError
        If a ``study.json`` is there but is not a JSON object.
    """
    card = folder / "study.json"
    if not card.is_file():
        return folder.resolve().name, "1"
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
        return str(data.get("subject", folder.resolve().name)), str(data.get("scan", "1"))
    except (OSError, ValueError, AttributeError):
        raise InputError(f"{card}: not a valid study.json (a JSON object with subject and "
                         "scan)") from None


def _study_identity(base: Path) -> tuple[str, str]:
    folder = base if base.is_dir() else base.parent
    if base.is_dir() or (folder / "study.json").is_file():
        return study_identity(folder)
    stem = base.name.removesuffix(".gz").removesuffix(".nii")
    # a file named by its role (sub01/water.nii.gz) is named by its folder
    return (folder.resolve().name if stem.lower() in MAP_ROLES else stem), "1"


def describe_study(image: WaterFatImage) -> dict[str, object]:
    """What was found in a study, as plain data (``vertebrafat info``)."""
    import nibabel as nib

    meta = image.meta
    return {
        "source": meta.source,
        "format": meta.format,
        "vendor": meta.vendor,
        "subject": meta.subject,
        "scan": meta.scan,
        "channels": list(image.channels),
        "shape": list(image.shape),
        "spacing_mm": [round(v, 4) for v in image.spacing_mm],
        "orientation": "".join(nib.orientations.aff2axcodes(image.affine)),
        "affine": np.round(image.affine, 4).tolist(),
        "ff_scale": meta.ff_scale,
        "field_strength_t": meta.field_strength_t,
        "series": [
            {"role": s.role, "number": s.series_number, "description": s.description,
             "slices": s.n_slices, "source": s.source}
            for s in meta.series
        ],
        "notes": list(meta.notes),
    }


def parse_series_choices(values: list[str] | None) -> dict[str, int]:
    """``["water=5", "ff=7"]`` -> ``{"water": 5, "ff": 7}`` (the ``--series`` option).

    Raises
    ------
    InputError
        If a value is not ``ROLE=NUMBER`` with a known role.
    """
    out: dict[str, int] = {}
    roles = ("water", "fat", "ff", "r2star", "t2star", "in_phase", "out_phase")
    for v in values or []:
        role, _, number = v.partition("=")
        if role not in roles or not number.strip().isdigit():
            raise InputError(f"--series {v}: expected ROLE=NUMBER with ROLE one of {roles}")
        out[role] = int(number)
    return out
