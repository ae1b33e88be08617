"""Write complex multi-echo images as scanners export them (the phantom's raw echoes, tests).

Layouts (``layout``):

- ``siemens``: a magnitude series and a phase series, every echo in each (ImageType
  ``ORIGINAL\\PRIMARY\\M\\ND`` / ``...\\P\\ND``, EchoTime, EchoNumbers); phase stored on 12 bits
  (0..4095 over one turn) with RescaleSlope 2 and RescaleIntercept -4096, as Siemens writes it.
- ``ge``: one series per echo holding real and imaginary images (GE's private image type
  (0043,102F) 2 and 3), signed 16-bit with a RescaleSlope that gives back the input's units.
- ``philips-enhanced``: one Enhanced MR object with magnitude and phase frames per echo
  (ComplexImageComponent, EffectiveEchoTime); phase through a Real World Value Mapping in mrad.

Same input and seed -> same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydicom.dataset import FileDataset

from vertebrafat.core.errors import InputError
from vertebrafat.core.types import Affine
from vertebrafat.io.atomic import write_bytes_atomic
from vertebrafat.io.dicom.write import encode, slice_dataset, uid_from
from vertebrafat.io.dicom.write_enhanced import FrameStack, enhanced_dataset

EchoLayout = Literal["siemens", "ge", "philips-enhanced"]
ECHO_LAYOUTS: Final[tuple[str, ...]] = ("siemens", "ge", "philips-enhanced")
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_MAGNITUDE_TOP = 4000.0
_GE_TOP = 30000.0


def save_dicom_echoes(
    echoes: npt.ArrayLike,
    echo_times_ms: npt.ArrayLike,
    affine: Affine,
    out_dir: str | os.PathLike[str],
    *,
    layout: EchoLayout,
    uid_seed: int,
    field_strength_t: float | None = None,
    patient_id: str = "PHANTOM",
) -> list[Path]:
    """Write ``echoes`` ``(echoes, slices, rows, cols)`` complex as DICOM in ``layout``.

    Parameters
    ----------
    echoes : complex array, shape (echoes, slices, rows, cols)
    echo_times_ms : array of float, shape (echoes,)
    affine : (4, 4)
        Voxel ``(slice, row, col)`` -> RAS mm.
    out_dir : path
        Folder to write (one sub-folder per series).
    layout : {"siemens", "ge", "philips-enhanced"}
    uid_seed : int
        Seed of every UID.
    field_strength_t : float, optional
        MagneticFieldStrength to record.

    Returns
    -------
    list of Path

    Raises
    ------
    InputError
        An unknown layout, or echoes and echo times that do not match.
    """
    data = np.asarray(echoes)
    times = np.asarray(echo_times_ms, dtype=np.float64)
    if layout not in ECHO_LAYOUTS:
        raise InputError(f"unknown echo layout {layout!r}; expected one of "
                         f"{', '.join(ECHO_LAYOUTS)}")
    if data.ndim != 4 or times.shape != (data.shape[0],):
        raise InputError(f"echoes of shape {data.shape} and {times.size} echo times do not "
                         "match (expected (echoes, slices, rows, cols))")
    lps = _RAS_TO_LPS @ np.asarray(affine, dtype=np.float64)
    top = float(np.max(np.abs(data))) or 1.0
    if layout == "philips-enhanced":
        ds = enhanced_dataset(_philips_frames(data, times, top), lps, vendor="philips",
                              description="mFFE echoes", image_type=("ORIGINAL", "PRIMARY",
                                                                      "T1", "MIXED"),
                              series_number=601, uid_seed=uid_seed)
        return [_write(ds, Path(out_dir) / "0601" / "IM0001.dcm", uid_seed, field_strength_t,
                       patient_id)]
    written = []
    for number, image_type, echo, stored, slope, intercept, ge_code in _classic_series(
            data, layout, top):
        series_uid = uid_from(uid_seed, "echo-series", number)
        for k in range(stored.shape[0]):
            ds = slice_dataset(stored[k], lps, k, vendor="ge" if layout == "ge" else
                                "siemens", description="me_gre", image_type=image_type,
                                series_number=number, slope=1.0, intercept=0.0)
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", f"{intercept:.10g}"
            ds.EchoTime, ds.EchoNumbers = float(times[echo]), echo + 1
            if layout == "siemens":
                ds.BitsStored, ds.HighBit = 12, 11
            if ge_code is not None:
                ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x2F, "SS",
                                                                             ge_code)
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = uid_from(uid_seed, "echo-sop", number, echo, k, ge_code)
            name = f"IM{echo + 1:02d}{k + 1:04d}{'' if ge_code is None else ge_code}.dcm"
            written.append(_write(ds, Path(out_dir) / f"{number:04d}" / name, uid_seed,
                                  field_strength_t, patient_id))
    return written


_Series = tuple[int, tuple[str, ...], int, npt.NDArray[np.integer], float, float, int | None]


def _classic_series(
    data: npt.NDArray[np.complexfloating], layout: str, top: float
) -> list[_Series]:
    """(series number, ImageType, echo index, stored ints, slope, intercept, GE code)."""
    out: list[_Series] = []
    for e in range(data.shape[0]):
        if layout == "siemens":
            magnitude = np.round(np.abs(data[e]) * (_MAGNITUDE_TOP / top)).astype(np.uint16)
            out.append((2, ("ORIGINAL", "PRIMARY", "M", "ND"), e, magnitude,
                        top / _MAGNITUDE_TOP, 0.0, None))
            turn = (np.angle(data[e]) + np.pi) / (2 * np.pi)
            phase = (np.round(turn * 4096) % 4096).astype(np.uint16)
            out.append((3, ("ORIGINAL", "PRIMARY", "P", "ND"), e, phase, 2.0, -4096.0, None))
        else:
            scale = _GE_TOP / top
            for part, code in ((data[e].real, 2), (data[e].imag, 3)):
                stored = np.round(part * scale).astype(np.int16)
                out.append((100 + e + 1, ("ORIGINAL", "PRIMARY", "OTHER"), e, stored,
                            1.0 / scale, 0.0, code))
    return out


def _philips_frames(
    data: npt.NDArray[np.complexfloating], times: npt.NDArray[np.float64], top: float
) -> list[FrameStack]:
    frames = []
    slope = top / _MAGNITUDE_TOP
    phase_slope, phase_intercept = 2000 * np.pi / 4095, -1000 * np.pi
    for e in range(data.shape[0]):
        magnitude = np.round(np.abs(data[e]) / slope).astype(np.uint16)
        phase = np.round((np.angle(data[e]) + np.pi) / (2 * np.pi) * 4095).astype(np.uint16)
        frames.append(FrameStack(magnitude, ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                                 "MAGNITUDE", (slope, 0.0), (slope, 0.0, "1"),
                                 echo_time_ms=float(times[e]), philips_type="M"))
        frames.append(FrameStack(phase, ("ORIGINAL", "PRIMARY", "P_FFE", "P", "FFE"), "PHASE",
                                 (phase_slope, phase_intercept),
                                 (phase_slope, phase_intercept, "mrad"),
                                 echo_time_ms=float(times[e]), philips_type="P"))
    return frames


def _write(ds: FileDataset, path: Path, uid_seed: int, field_strength_t: float | None,
           patient_id: str) -> Path:
    ds.StudyInstanceUID = uid_from(uid_seed, "study")
    ds.FrameOfReferenceUID = uid_from(uid_seed, "frame")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = f"PHANTOM^{patient_id}"
    ds.PatientID = patient_id
    if field_strength_t is not None:
        ds.MagneticFieldStrength = float(field_strength_t)
    write_bytes_atomic(path, encode(ds))
    return path
