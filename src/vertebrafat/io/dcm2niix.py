"""NIfTI as dcm2niix writes it: files named by protocol and series, roles in JSON sidecars.

dcm2niix (the converter most NIfTI users have) stores each DICOM series as
``<folder>_<protocol>_<time>_<series>.nii.gz`` beside a BIDS sidecar ``.json`` holding the
series' ``ImageType``, ``SeriesDescription`` and ``Manufacturer``; the array has the in-plane
axes first (columns, then rows bottom to top) and the slice axis last, and the stored integers
keep the scanner's scaling through ``scl_slope``/``scl_inter``. :func:`sidecar_roles` finds the
water-fat roles of such a folder by the same vendor rules as DICOM
(:func:`vertebrafat.io.dicom.roles.series_role`); :func:`save_dcm2niix_study` writes a study
that way (the phantom's ``nifti-dcm2niix`` format), so the reader is tested on the layout users
have rather than the project's own.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from vertebrafat.core.errors import InputError
from vertebrafat.core.image import MAP_ROLES, WaterFatImage
from vertebrafat.core.types import Affine
from vertebrafat.io.atomic import write_text_atomic
from vertebrafat.io.dicom.roles import (
    MANUFACTURER,
    MODEL_NAME,
    SERIES_STYLE,
    Vendor,
    series_role,
)
from vertebrafat.io.nifti import nifti_files, save_volume


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def read_sidecar(nii: Path) -> dict[str, object]:
    """The BIDS sidecar beside a NIfTI file (``x.nii.gz`` -> ``x.json``), empty when absent.

    Raises
    ------
    InputError
        If the sidecar exists but is not a JSON object.
    """
    card = nii.with_name(_stem(nii) + ".json")
    if not card.is_file():
        return {}
    try:
        meta = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{card}: not a valid JSON sidecar ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{card}: not a valid JSON sidecar (not an object)")
    return meta


def sidecar_roles(folder: Path) -> dict[str, Path]:
    """Role -> NIfTI file, from the BIDS sidecars (``ImageType``, ``SeriesDescription``).

    Files without a sidecar, or whose sidecar names no water-fat role, are left out.

    Raises
    ------
    InputError
        If a sidecar is not valid JSON, or two files claim one role (both named; pick one with
        ``--water``/``--fat``/``--ff``/``--r2star``).
    """
    found: dict[str, Path] = {}
    for nii in nifti_files(folder):
        meta = read_sidecar(nii)
        image_type = meta.get("ImageType", [])
        types = [str(v) for v in image_type] if isinstance(image_type, list) else []
        description = str(meta.get("SeriesDescription", ""))
        role = series_role(types, description)
        if role not in MAP_ROLES:
            continue
        if role in found:
            raise InputError(
                f"{folder}: two files are {role} ({found[role].name}, {nii.name}); "
                f"pick one with --{role}"
            )
        found[role] = nii
    return found


def dcm2niix_axes(volume: np.ndarray, affine: Affine) -> tuple[np.ndarray, Affine]:
    """A ``(slices, rows, cols)`` volume and affine in dcm2niix's array order:
    ``(cols, rows from the bottom, slices)``."""
    out = np.ascontiguousarray(np.transpose(volume, (2, 1, 0))[:, ::-1, :])
    aff = np.asarray(affine, dtype=np.float64)
    new = np.eye(4)
    new[:3, 0] = aff[:3, 2]
    new[:3, 1] = -aff[:3, 1]
    new[:3, 2] = aff[:3, 0]
    new[:3, 3] = aff[:3, 3] + aff[:3, 1] * (volume.shape[1] - 1)
    return out, new


def save_dcm2niix_study(
    image: WaterFatImage, out_dir: str | os.PathLike[str], *, vendor: Vendor, folder_name: str,
) -> list[Path]:
    """Write ``image`` as dcm2niix converts ``vendor``'s DICOM export of it.

    One ``<folder_name>_<protocol>_<series>.nii.gz`` and ``.json`` per role, the stored integers
    and rescale of :func:`vertebrafat.io.dicom.write.save_dicom_study` as ``scl_slope`` /
    ``scl_inter``, the array in dcm2niix's order (:func:`dcm2niix_axes`).
    """
    from vertebrafat.io.dicom.write import stored_series

    out = Path(out_dir)
    written: list[Path] = []
    for role, (pixels, slope, intercept) in stored_series(image, vendor).items():
        description, image_type, number = SERIES_STYLE[vendor][role]
        protocol = re.sub(r"[^A-Za-z0-9-]+", "_", description.split(":")[-1]).strip("_")
        name = f"{folder_name}_{protocol}_{number}"
        data, affine = dcm2niix_axes(pixels, image.affine)
        save_volume(data, affine, out / f"{name}.nii.gz", slope=slope, intercept=intercept)
        sidecar = {
            "Modality": "MR",
            "MagneticFieldStrength": image.meta.field_strength_t,
            "Manufacturer": MANUFACTURER[vendor],
            "ManufacturersModelName": MODEL_NAME[vendor],
            "ImageType": list(image_type),
            "SeriesDescription": description,
            "ProtocolName": description,
            "SeriesNumber": number,
            "ConversionSoftware": "dcm2niix",
        }
        write_text_atomic(out / f"{name}.json", json.dumps(sidecar, indent=1) + "\n")
        written += [out / f"{name}.nii.gz", out / f"{name}.json"]
    return written
