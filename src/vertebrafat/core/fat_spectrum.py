"""The fat spectrum: resonances of the fat protons relative to water, and the default model.

One definition for the phantom that simulates echoes and the water-fat separation that fits them.
"""

from __future__ import annotations

from dataclasses import dataclass

from vertebrafat.core.errors import InputError

GYROMAGNETIC_MHZ_PER_T = 42.577
"""Proton gyromagnetic ratio / 2 pi (MHz per tesla)."""


@dataclass(frozen=True)
class FatModel:
    """A multi-peak fat spectrum.

    Attributes
    ----------
    ppm : tuple of float
        Chemical shift of each fat peak relative to water (ppm; fat resonates below water, so
        the main methylene peak is about -3.4 ppm).
    amplitudes : tuple of float
        Relative amplitude of each peak (any positive scale; normalised to sum 1 when used).
    name : str
        Where the model comes from (recorded with results).

    Raises
    ------
    InputError
        If the tuples are empty or of different lengths, or an amplitude is not positive.
    """

    ppm: tuple[float, ...]
    amplitudes: tuple[float, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if not self.ppm or len(self.ppm) != len(self.amplitudes):
            raise InputError(
                f"fat model: {len(self.ppm)} peaks but {len(self.amplitudes)} amplitudes"
            )
        if min(self.amplitudes) <= 0:
            raise InputError(f"fat model: amplitudes must be positive, got {self.amplitudes}")

    def frequencies_hz(self, field_strength_t: float) -> tuple[float, ...]:
        """Frequency offset of each peak from water (Hz) at ``field_strength_t`` tesla."""
        return tuple(p * GYROMAGNETIC_MHZ_PER_T * field_strength_t for p in self.ppm)

    def relative_amplitudes(self) -> tuple[float, ...]:
        """Amplitudes normalised to sum 1."""
        total = sum(self.amplitudes)
        return tuple(a / total for a in self.amplitudes)

    def main_peak_hz(self, field_strength_t: float) -> float:
        """Offset (Hz, negative) of the largest peak: the water-fat shift at this field."""
        k = max(range(len(self.amplitudes)), key=self.amplitudes.__getitem__)
        return self.ppm[k] * GYROMAGNETIC_MHZ_PER_T * field_strength_t


LIVER_6PEAK = FatModel(
    ppm=(-3.80, -3.40, -2.60, -1.94, -0.39, 0.60),
    amplitudes=(0.087, 0.693, 0.128, 0.004, 0.039, 0.048),
    name="6-peak liver/marrow fat (Hamilton et al. 2011, NMR Biomed 24:784)",
)
"""The default: the 6-peak spectrum of the ISMRM fat-water toolbox and of the phantom."""
