"""Write a :class:`WaterFatImage` as vendor-style water-fat DICOM series (MR Image Storage).

Used by the phantom and by the tests to make GE IDEAL-IQ, Siemens Dixon and Philips mDixon
Quant folders with complete geometry. Everything derives from ``uid_seed``: same image, same
seed -> identical bytes (fixed dates, UIDs from the seed, no clock).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from vertebrafat.core.errors import InputError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.core.version import __version__
from vertebrafat.io.atomic import write_bytes_atomic
from vertebrafat.io.dicom.roles import (
    FF_FULL_SCALE,
    MANUFACTURER,
    MODEL_NAME,
    SERIES_STYLE,
    VENDORS,
    Vendor,
)

MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4")
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_DATE = "20250101"


def uid_from(seed: int, *parts: object) -> str:
    """A deterministic DICOM UID from ``seed`` and ``parts``."""
    return str(generate_uid(entropy_srcs=[str(seed), *(str(p) for p in parts)]))


def save_dicom_study(
    image: WaterFatImage,
    out_dir: str | os.PathLike[str],
    *,
    vendor: Vendor,
    patient_name: str,
    patient_id: str,
    uid_seed: int,
    study_description: str = "L-SPINE WATER-FAT",
    shuffle_names: bool = False,
) -> list[Path]:
    """Write every role of ``image`` as one DICOM series per role, as ``vendor`` exports it.

    Parameters
    ----------
    image : WaterFatImage
        Volumes ``(slices, rows, cols)``; FF in percent, R2* in 1/s. Siemens in/out-phase
        images are synthesised as ``W + F`` and ``|W - F|`` when water and fat exist.
    out_dir : path
        Folder to write into (one sub-folder per series).
    vendor : {"ge", "siemens", "philips"}
    patient_name, patient_id : str
        Fake identity (e.g. ``PHANTOM^P001``).
    uid_seed : int
        Seed of every UID.
    shuffle_names : bool
        Name files by a seeded random permutation instead of slice order (tests that the
        reader never relies on names).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    InputError
        If ``vendor`` is unknown.
    """
    if vendor not in VENDORS:
        raise InputError(f"unknown vendor {vendor!r}; expected one of {', '.join(VENDORS)}")
    stored = stored_series(image, vendor)
    study_uid = uid_from(uid_seed, "study")
    frame_uid = uid_from(uid_seed, "frame")
    lps = _RAS_TO_LPS @ np.asarray(image.affine, dtype=np.float64)
    written: list[Path] = []
    rng = np.random.default_rng(uid_seed)
    for role, (pixels, slope, intercept) in stored.items():
        description, image_type, number = SERIES_STYLE[vendor][role]
        series_uid = uid_from(uid_seed, "series", role)
        n = pixels.shape[0]
        order = rng.permutation(n) if shuffle_names else np.arange(n)
        for k in range(n):
            ds = slice_dataset(
                pixels[k], lps, k, vendor=vendor, description=description,
                image_type=image_type, series_number=number, slope=slope, intercept=intercept,
            )
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = frame_uid
            ds.SOPInstanceUID = uid_from(uid_seed, "sop", role, k)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientName = patient_name
            ds.PatientID = patient_id
            ds.StudyDescription = study_description
            ds.StudyID = str(uid_seed % 100000)
            ds.AccessionNumber = f"ACC{uid_seed % 1000000:06d}"
            if image.meta.field_strength_t is not None:
                ds.MagneticFieldStrength = float(image.meta.field_strength_t)
            path = Path(out_dir) / f"{number:04d}" / f"IM{int(order[k]) + 1:04d}.dcm"
            write_bytes_atomic(path, _encode(ds))
            written.append(path)
    return written


def stored_series(
    image: WaterFatImage, vendor: Vendor
) -> dict[str, tuple[npt.NDArray[np.integer], float, float]]:
    """role -> (stored integers, RescaleSlope, RescaleIntercept) in the vendor's style."""
    mags: dict[str, npt.NDArray[np.float64]] = {"water": image.water.astype(np.float64)}
    if image.fat is not None:
        mags["fat"] = image.fat.astype(np.float64)
    # One scale for every magnitude image, set by water and fat (in-phase may reach 2x).
    top = max(float(np.max(np.abs(m))) for m in mags.values()) or 1.0
    if image.fat is not None and vendor == "siemens":
        mags["in_phase"] = mags["water"] + mags["fat"]
        mags["out_phase"] = np.abs(mags["water"] - mags["fat"])
    out: dict[str, tuple[npt.NDArray[np.integer], float, float]] = {}
    for role, m in mags.items():
        if vendor == "philips":
            slope = top / 4000.0
            out[role] = (np.round(np.abs(m) / slope).astype(np.uint16), slope, 0.0)
        else:
            out[role] = (np.round(np.abs(m) * (4000.0 / top)).astype(np.uint16), 1.0, 0.0)
    if image.ff is not None:
        ff = image.ff.astype(np.float64)
        if vendor == "philips":
            out["ff"] = (np.round((ff + 10.0) / 0.025).astype(np.uint16), 0.025, -10.0)
        else:
            scaled = np.clip(np.round(ff * FF_FULL_SCALE[vendor] / 100.0), -32768, 32767)
            out["ff"] = (scaled.astype(np.int16), 1.0, 0.0)
    if image.r2star is not None:
        r2 = np.clip(image.r2star.astype(np.float64), 0.0, 6000.0)
        if vendor == "philips":
            out["r2star"] = (np.round(r2 / 0.1).astype(np.uint16), 0.1, 0.0)
        else:
            out["r2star"] = (np.round(r2).astype(np.uint16), 1.0, 0.0)
    return out


def base_dataset(
    *, vendor: Vendor, description: str, image_type: tuple[str, ...], series_number: int,
    sop_class: UID = MR_IMAGE_STORAGE,
) -> FileDataset:
    """The attributes every image the phantom writes shares (no pixels, no geometry, no UIDs)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.Modality = "MR"
    ds.Manufacturer = MANUFACTURER[vendor]
    ds.ManufacturerModelName = MODEL_NAME[vendor]
    ds.SoftwareVersions = f"vertebrafat {__version__} phantom writer"
    ds.ImageType = list(image_type)
    ds.SeriesDescription = description
    ds.SeriesNumber = series_number
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = _DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = "120000"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.ReferringPhysicianName = ""
    ds.BodyPartExamined = "LSPINE"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SP"
    ds.MRAcquisitionType = "3D"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    return ds


def plane_geometry(lps: npt.NDArray[np.float64], k: int) -> dict[str, object]:
    """ImageOrientationPatient, ImagePositionPatient, PixelSpacing and SliceThickness of slice
    ``k`` of a volume whose voxel -> LPS affine is ``lps`` (values rounded as written)."""
    col_step, row_step, slice_step = lps[:3, 2], lps[:3, 1], lps[:3, 0]
    dc, dr, ds_mm = (float(np.linalg.norm(v)) for v in (col_step, row_step, slice_step))
    position = lps[:3, 3] + k * slice_step
    return {
        "ImageOrientationPatient": [float(round(v, 8))
                                    for v in (*col_step / dc, *row_step / dr)],
        "ImagePositionPatient": [float(round(v, 6)) for v in position],
        "PixelSpacing": [round(dr, 6), round(dc, 6)],
        "SliceThickness": round(ds_mm, 6),
        "SliceLocation": float(round(float(np.dot(position, np.cross(col_step / dc,
                                                                       row_step / dr))), 6)),
    }


def slice_dataset(
    pixels: npt.NDArray[np.integer],
    lps: npt.NDArray[np.float64],
    k: int,
    *,
    vendor: Vendor,
    description: str,
    image_type: tuple[str, ...],
    series_number: int,
    slope: float,
    intercept: float,
) -> FileDataset:
    ds = base_dataset(vendor=vendor, description=description, image_type=image_type,
                      series_number=series_number)
    ds.InstanceNumber = k + 1
    geometry = plane_geometry(lps, k)
    for keyword in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing",
                    "SliceThickness"):
        setattr(ds, keyword, geometry[keyword])
    ds.SpacingBetweenSlices = geometry["SliceThickness"]
    ds.SliceLocation = geometry["SliceLocation"]
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    if vendor == "philips":
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = f"{intercept:.10g}"
        ds.RescaleType = "US"
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def encode(ds: FileDataset) -> bytes:
    """The bytes of ``ds`` as a DICOM file."""
    return _encode(ds)


def _encode(ds: FileDataset) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
