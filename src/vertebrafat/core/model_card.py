"""The model card: what inference needs to know about a model (``NAME.json`` holds more).

Parsed from JSON by :func:`vertebrafat.io.model.card_from_json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The image channels a model may read, in the order the reference study stacked them.
CHANNELS: tuple[str, ...] = ("water", "fat", "ff", "r2star")


@dataclass(frozen=True)
class ModelCard:
    """What inference (:func:`vertebrafat.segmentation.inference.predict`) needs to know about a
    model (the JSON card holds more).

    ``channels`` are the image channels the network reads, in input order; the input has one
    plane per channel, then for each distance in ``context_mm`` the mean and the absolute
    difference of the water planes that far left and right of the slice (2.5D context that
    does not depend on the slice order), then one presence plane per ``optional_channels``.
    ``classes`` lists the softmax classes (``("background", "vertebral_body", "sacrum"[,
    "rib"])``) or a single ``("vertebral_body",)`` for a sigmoid output.
    """

    name: str
    channels: tuple[str, ...]
    optional_channels: tuple[str, ...]
    classes: tuple[str, ...]
    pixel_spacing_mm: float
    threshold: float = 0.5
    divisor: int = 16
    min_component_ml: float = 1.0
    water_percentile: float = 99.0
    ff_divisor: float = 100.0
    r2star_divisor_per_s: float = 200.0
    context_mm: tuple[float, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def required_channels(self) -> tuple[str, ...]:
        return tuple(c for c in self.channels if c not in self.optional_channels)

    @property
    def n_planes(self) -> int:
        return len(self.channels) + 2 * len(self.context_mm) + len(self.optional_channels)

    @property
    def n_values(self) -> int:
        """Planes before the presence flags (image values and context)."""
        return len(self.channels) + 2 * len(self.context_mm)


