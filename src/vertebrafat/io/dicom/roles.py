"""Vendor conventions for water-fat DICOM series: how each role is named and scaled.

One table serves the writer (:mod:`vertebrafat.io.dicom.write`) and the reader
(:func:`series_role`), so what we write is what we recognise. Conventions:

- GE IDEAL-IQ: descriptions ``WATER: ...``, ``FAT: ...``, ``FatFrac: ...`` (FF stored x10,
  0-1000), ``R2* (Hz): ...``; ImageType ``ORIGINAL\\PRIMARY\\OTHER``; no rescale tags.
- Siemens Dixon: ImageType ``DERIVED\\PRIMARY\\DIXON\\W`` (``F``, ``IN``, ``OPP``, ``FF``); series
  descriptions ending ``_W``, ``_F``, ``_in``, ``_opp``, ``_FF``; FF stored x10.
- Philips mDixon Quant: ImageType ``DERIVED\\PRIMARY\\W\\W`` (``F``, ``FF``, ``R2_STAR``,
  ``T2_STAR``); descriptions like ``mDIXON Quant_FF``; values through RescaleSlope/Intercept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Literal

Vendor = Literal["ge", "siemens", "philips"]
VENDORS: Final[tuple[Vendor, ...]] = ("ge", "siemens", "philips")

MANUFACTURER: Final[dict[Vendor, str]] = {
    "ge": "GE MEDICAL SYSTEMS",
    "siemens": "SIEMENS",
    "philips": "Philips Medical Systems",
}
MODEL_NAME: Final[dict[Vendor, str]] = {
    "ge": "SIGNA Premier",
    "siemens": "MAGNETOM Prisma",
    "philips": "Ingenia",
}

# role -> (series description, ImageType, series number) per vendor
SERIES_STYLE: Final[dict[Vendor, dict[str, tuple[str, tuple[str, ...], int]]]] = {
    "ge": {
        "water": ("WATER: Sag IDEAL IQ L-spine", ("ORIGINAL", "PRIMARY", "OTHER"), 1001),
        "fat": ("FAT: Sag IDEAL IQ L-spine", ("ORIGINAL", "PRIMARY", "OTHER"), 1101),
        "ff": ("FatFrac: Sag IDEAL IQ L-spine", ("DERIVED", "PRIMARY", "OTHER"), 1201),
        "r2star": ("R2* (Hz): Sag IDEAL IQ L-spine", ("DERIVED", "PRIMARY", "OTHER"), 1301),
    },
    "siemens": {
        "water": ("t1_vibe_dixon_sag_W", ("DERIVED", "PRIMARY", "DIXON", "W"), 5),
        "fat": ("t1_vibe_dixon_sag_F", ("DERIVED", "PRIMARY", "DIXON", "F"), 6),
        "in_phase": ("t1_vibe_dixon_sag_in", ("ORIGINAL", "PRIMARY", "DIXON", "IN"), 3),
        "out_phase": ("t1_vibe_dixon_sag_opp", ("ORIGINAL", "PRIMARY", "DIXON", "OPP"), 4),
        "ff": ("t1_vibe_dixon_sag_FF", ("DERIVED", "PRIMARY", "DIXON", "FF"), 7),
        "r2star": ("t1_vibe_dixon_sag_R2*", ("DERIVED", "PRIMARY", "DIXON", "R2STAR"), 8),
    },
    "philips": {
        "water": ("mDIXON Quant sag_W", ("DERIVED", "PRIMARY", "W", "W"), 501),
        "fat": ("mDIXON Quant sag_F", ("DERIVED", "PRIMARY", "F", "F"), 502),
        "ff": ("mDIXON Quant sag_FF", ("DERIVED", "PRIMARY", "FF", "FF"), 503),
        "r2star": ("mDIXON Quant sag_R2*", ("DERIVED", "PRIMARY", "R2_STAR", "R2_STAR"), 504),
    },
}

# Full scale of stored FF per vendor (GE and Siemens store percent x10).
FF_FULL_SCALE: Final[dict[Vendor, float]] = {"ge": 1000.0, "siemens": 1000.0, "philips": 100.0}

_ROLE_TOKENS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("ff", frozenset({"FF", "FATFRAC", "FAT_FRACTION", "FATFRACTION", "PDFF", "FP"})),
    ("r2star", frozenset({"R2*", "R2STAR", "R2_STAR", "R2"})),
    ("t2star", frozenset({"T2*", "T2STAR", "T2_STAR"})),
    ("water", frozenset({"W", "WATER"})),
    ("fat", frozenset({"F", "FAT"})),
    ("in_phase", frozenset({"IN", "IN_PHASE", "INPHASE", "IP"})),
    ("out_phase", frozenset({"OPP", "OUT_PHASE", "OUTPHASE", "OP", "OPP_PHASE"})),
)


def vendor_of(manufacturer: str) -> str:
    """``ge``, ``siemens``, ``philips`` or ``unknown`` from the Manufacturer tag."""
    m = manufacturer.upper()
    for key in ("GE", "SIEMENS", "PHILIPS"):
        if m.startswith(key) or key in m.split():
            return key.lower()
    return "unknown"


def _desc_tokens(description: str) -> list[str]:
    return [t for t in re.split(r"[^A-Z0-9*]+", description.upper()) if t]


def series_role(image_type: Sequence[str], description: str) -> str | None:
    """The water-fat role of a series from its ImageType and SeriesDescription.

    ImageType values after the first two (``ORIGINAL\\PRIMARY``) are checked first, then the
    first token of the description (GE: ``WATER:``) and its last token (Siemens/Philips:
    ``..._W``). Returns ``water``, ``fat``, ``ff``, ``r2star``, ``t2star``, ``in_phase``,
    ``out_phase`` or None when nothing matches.
    """
    kinds = [str(v).upper() for v in list(image_type)[2:]]
    tokens = _desc_tokens(description)
    candidates = [kinds, tokens[:1], tokens[-1:]]
    for group in candidates:
        for role, names in _ROLE_TOKENS:
            if any(k in names for k in group):
                return role
    return None


COMPONENTS: Final[tuple[str, ...]] = ("magnitude", "phase", "real", "imaginary")
_COMPONENT_TOKENS: Final[dict[str, str]] = {
    "M": "magnitude", "MAGNITUDE": "magnitude", "MAG": "magnitude",
    "P": "phase", "PHASE": "phase", "PHA": "phase",
    "R": "real", "REAL": "real", "I": "imaginary", "IMAGINARY": "imaginary", "IMAG": "imaginary",
}
# GE's private image type (0043,102F): 0 magnitude, 1 phase, 2 real, 3 imaginary
_GE_COMPONENT: Final[dict[int, str]] = {0: "magnitude", 1: "phase", 2: "real", 3: "imaginary"}


def component_from(
    image_type: Sequence[str], complex_component: str = "", ge_code: int | None = None
) -> str | None:
    """Which part of the complex signal an image holds: ``magnitude``, ``phase``, ``real``,
    ``imaginary``, or None when nothing says.

    The enhanced ComplexImageComponent wins (``MIXED`` says nothing), then ImageType values
    after the first two (Siemens ``M``/``P``, Philips ``M_FFE``/``P_SE``: the part before
    ``_``), then GE's private image type code.

    >>> component_from(["ORIGINAL", "PRIMARY", "P", "ND"]), component_from([], "MAGNITUDE")
    ('phase', 'magnitude')
    """
    named = _COMPONENT_TOKENS.get(complex_component.strip().upper())
    if named is not None:
        return named
    for value in list(image_type)[2:]:
        token = str(value).strip().upper()
        found = _COMPONENT_TOKENS.get(token) or _COMPONENT_TOKENS.get(token.split("_")[0])
        if found is not None:
            return found
    return _GE_COMPONENT.get(ge_code) if ge_code is not None else None
