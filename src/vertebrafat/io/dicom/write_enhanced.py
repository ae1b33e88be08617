"""Write a :class:`WaterFatImage` as Enhanced MR Image Storage objects, as scanners export them.

- Philips (mDixon Quant, R5+): ONE object holding every role as frames, told apart per frame by
  ``FrameType`` (``DERIVED\\PRIMARY\\W\\W``, ``...\\FF\\FF``); per frame a Pixel Value
  Transformation (the classic series' RescaleSlope/Intercept), a Real World Value Mapping (the
  same line, with units: ``%`` for FF, ``Hz`` for R2*, ``1`` for water and fat), and in a
  private per-frame item (2005,140F) the scale slope (2005,100E) = 1 / RescaleSlope (so that
  every one of the three mappings gives the classic twin's values) and ImageTypeMR (2005,1011).
- Siemens (XA) and GE: one object per role series, the classic series' description, number
  and ImageType as FrameType, rescale 1 / 0.

Geometry: orientation and pixel measures shared, position per frame. Frames are written
slice by slice with the roles interleaved (not the classic file order), or in a seeded random
order (``shuffle_frames``): the reader must sort them. Same image and seed -> same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileDataset
from pydicom.uid import UID

from vertebrafat.core.errors import InputError
from vertebrafat.core.image import WaterFatImage
from vertebrafat.io.atomic import write_bytes_atomic
from vertebrafat.io.dicom.roles import SERIES_STYLE, VENDORS, Vendor
from vertebrafat.io.dicom.write import base_dataset, encode, plane_geometry, stored_series, uid_from

ENHANCED_MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Real World Value units (UCUM) of each role in Philips objects
_UNITS = {"water": ("1", "no units"), "fat": ("1", "no units"), "ff": ("%", "percent"),
          "r2star": ("Hz", "hertz")}
_PHILIPS_DESCRIPTION, _PHILIPS_NUMBER = "mDIXON Quant sag", 501


@dataclass(frozen=True)
class FrameStack:
    """One volume to write as frames: stored integers ``(slices, rows, cols)`` and how to read
    them (FrameType, component, rescale, optional Real World Value Mapping ``(slope,
    intercept, UCUM units)``, Philips scale slope, effective echo time, Philips private
    ImageTypeMR)."""

    stored: npt.NDArray[np.integer]
    frame_type: tuple[str, ...]
    component: str = "MAGNITUDE"
    rescale: tuple[float, float] = (1.0, 0.0)
    real_world: tuple[float, float, str] | None = None
    philips_scale: float | None = None
    echo_time_ms: float | None = None
    philips_type: str | None = None


def save_enhanced_dicom_study(
    image: WaterFatImage,
    out_dir: str | os.PathLike[str],
    *,
    vendor: Vendor,
    patient_name: str,
    patient_id: str,
    uid_seed: int,
    study_description: str = "L-SPINE WATER-FAT",
    shuffle_frames: bool = False,
) -> list[Path]:
    """Write ``image`` as enhanced multi-frame objects in ``vendor``'s layout (module notes).

    The values are those of :func:`vertebrafat.io.dicom.write.save_dicom_study` (the classic
    twin with the same arguments), so both read to the same volumes.

    Returns
    -------
    list of Path
        The files written (one for Philips, one per role otherwise).

    Raises
    ------
    InputError
        If ``vendor`` is unknown.
    """
    if vendor not in VENDORS:
        raise InputError(f"unknown vendor {vendor!r}; expected one of {', '.join(VENDORS)}")
    stacks: dict[str, FrameStack] = {}
    for role, (pixels, slope, intercept) in stored_series(image, vendor).items():
        frame_type = SERIES_STYLE[vendor][role][1]
        if vendor == "philips":
            units = _UNITS.get(role, ("1", "no units"))[0]
            slope, intercept = float(f"{slope:.10g}"), float(f"{intercept:.10g}")
            stacks[role] = FrameStack(pixels, frame_type, rescale=(slope, intercept),
                                      real_world=(slope, intercept, units),
                                      philips_scale=1.0 / slope, philips_type=frame_type[-1])
        else:
            stacks[role] = FrameStack(pixels, frame_type)
    lps = _RAS_TO_LPS @ np.asarray(image.affine, dtype=np.float64)
    objects = ({_PHILIPS_NUMBER: (_PHILIPS_DESCRIPTION, ("DERIVED", "PRIMARY", "MIXED"),
                                  list(stacks.values()))} if vendor == "philips" else
               {SERIES_STYLE[vendor][r][2]: (SERIES_STYLE[vendor][r][0],
                                             SERIES_STYLE[vendor][r][1], [st])
                for r, st in stacks.items()})
    written = []
    for number, (description, image_type, frames) in objects.items():
        ds = enhanced_dataset(frames, lps, vendor=vendor, description=description,
                              image_type=image_type, series_number=number, uid_seed=uid_seed,
                              shuffle_frames=shuffle_frames)
        ds.PatientName, ds.PatientID = patient_name, patient_id
        ds.StudyDescription = study_description
        ds.StudyInstanceUID = uid_from(uid_seed, "study")
        ds.FrameOfReferenceUID = uid_from(uid_seed, "frame")
        ds.StudyID = str(uid_seed % 100000)
        ds.AccessionNumber = f"ACC{uid_seed % 1000000:06d}"
        if image.meta.field_strength_t is not None:
            ds.MagneticFieldStrength = float(image.meta.field_strength_t)
        path = Path(out_dir) / f"{number:04d}" / "IM0001.dcm"
        write_bytes_atomic(path, encode(ds))
        written.append(path)
    return written


def enhanced_dataset(
    stacks: Sequence[FrameStack],
    lps: npt.NDArray[np.float64],
    *,
    vendor: Vendor,
    description: str,
    image_type: tuple[str, ...],
    series_number: int,
    uid_seed: int,
    shuffle_frames: bool = False,
) -> FileDataset:
    """One Enhanced MR Image object of ``stacks`` (same shape, same integer type) on the grid
    ``lps`` (voxel -> LPS mm), frames slice by slice, stacks interleaved (or shuffled)."""
    shape = stacks[0].stored.shape
    ds = base_dataset(vendor=vendor, description=description, image_type=image_type,
                      series_number=series_number, sop_class=ENHANCED_MR_IMAGE_STORAGE)
    ds.SeriesInstanceUID = uid_from(uid_seed, "series", series_number, "enhanced")
    ds.SOPInstanceUID = uid_from(uid_seed, "sop", series_number, "enhanced")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = 1
    ds.ContentQualification = "PRODUCT"
    first = plane_geometry(lps, 0)
    ds.SharedFunctionalGroupsSequence = [_item(
        PlaneOrientationSequence=[_item(ImageOrientationPatient=first["ImageOrientationPatient"])],
        PixelMeasuresSequence=[_item(PixelSpacing=first["PixelSpacing"],
                                     SliceThickness=first["SliceThickness"],
                                     SpacingBetweenSlices=first["SliceThickness"])],
    )]
    order = [(k, j) for k in range(shape[0]) for j in range(len(stacks))]
    if shuffle_frames:
        rng = np.random.default_rng([uid_seed, series_number])
        order = [order[i] for i in rng.permutation(len(order))]
    ds.PerFrameFunctionalGroupsSequence = [_frame(stacks[j], lps, k, j) for k, j in order]
    ds.NumberOfFrames = len(order)
    ds.Rows, ds.Columns = int(shape[1]), int(shape[2])
    ds.PixelRepresentation = 1 if stacks[0].stored.dtype == np.int16 else 0
    ds.PixelData = b"".join(np.ascontiguousarray(stacks[j].stored[k]).tobytes()
                            for k, j in order)
    return ds


def _frame(stack: FrameStack, lps: npt.NDArray[np.float64], k: int, j: int) -> Dataset:
    geometry = plane_geometry(lps, k)
    item = _item(
        FrameContentSequence=[_item(StackID="1", InStackPositionNumber=k + 1,
                                    DimensionIndexValues=[k + 1, j + 1])],
        PlanePositionSequence=[_item(ImagePositionPatient=geometry["ImagePositionPatient"])],
        MRImageFrameTypeSequence=[_item(FrameType=list(stack.frame_type),
                                        ComplexImageComponent=stack.component,
                                        PixelPresentation="MONOCHROME",
                                        VolumetricProperties="VOLUME",
                                        VolumeBasedCalculationTechnique="NONE")],
        PixelValueTransformationSequence=[_item(RescaleSlope=f"{stack.rescale[0]:.10g}",
                                                RescaleIntercept=f"{stack.rescale[1]:.10g}",
                                                RescaleType="US")],
    )
    if stack.echo_time_ms is not None:
        item.MREchoSequence = [_item(EffectiveEchoTime=float(stack.echo_time_ms))]
    if stack.real_world is not None:
        slope, intercept, units = stack.real_world
        item.RealWorldValueMappingSequence = [_item(
            LUTExplanation=f"Real World Value Mapping for {units}", LUTLabel="vertebrafat",
            RealWorldValueFirstValueMapped=0, RealWorldValueLastValueMapped=65535,
            RealWorldValueSlope=float(slope), RealWorldValueIntercept=float(intercept),
            MeasurementUnitsCodeSequence=[_item(CodeValue=units, CodingSchemeDesignator="UCUM",
                                                CodeMeaning=units)],
        )]
    if stack.philips_scale is not None or stack.philips_type is not None:
        inner = Dataset()
        block = inner.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
        if stack.philips_scale is not None:
            block.add_new(0x0E, "FL", float(stack.philips_scale))
        if stack.philips_type is not None:
            block.add_new(0x11, "CS", stack.philips_type)
        item.private_block(0x2005, "Philips MR Imaging DD 005", create=True).add_new(
            0x0F, "SQ", [inner])
    return item


def _item(**attributes: object) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds
