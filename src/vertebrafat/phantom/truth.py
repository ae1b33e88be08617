"""Per-level ground truth of a phantom scan in the DESIGN.md measurement schema."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vertebrafat.core.image import spacing_from_affine
from vertebrafat.core.labels import CRANIOCAUDAL_ORDER, LEVEL_OF_LABEL
from vertebrafat.core.schema import LevelMeasurement
from vertebrafat.core.types import Affine, Labels, Volume


def truth_table(
    ff_true: Volume,
    labels: Labels,
    affine: Affine,
    *,
    subject: str,
    scan: str,
    flags: Mapping[int, tuple[str, ...]] | None = None,
) -> tuple[LevelMeasurement, ...]:
    """One row per label present, cranio-caudal order: statistics of ``ff_true`` (%) over the
    whole label (no erosion, all slices; SD with ddof=1, linear percentiles).

    ``partial_fov`` is flagged when the label touches a face of the array.
    """
    voxel_ml = float(np.prod(spacing_from_affine(affine))) / 1000.0
    rows = []
    present = set(np.unique(labels).tolist()) - {0}
    for label in [lab for lab in CRANIOCAUDAL_ORDER if lab in present]:
        mask = labels == label
        values = ff_true[mask].astype(np.float64)
        faces = (
            mask[0].any()
            or mask[-1].any()
            or mask[:, 0].any()
            or mask[:, -1].any()
            or mask[:, :, 0].any()
            or mask[:, :, -1].any()
        )
        p05, p95 = np.percentile(values, [5.0, 95.0])
        rows.append(
            LevelMeasurement(
                subject=subject,
                scan=scan,
                level=LEVEL_OF_LABEL[label],
                label=label,
                n_voxels=int(mask.sum()),
                n_slices=int(mask.any(axis=(1, 2)).sum()),
                volume_ml=round(float(mask.sum()) * voxel_ml, 4),
                ff_mean=float(values.mean()),
                ff_median=float(np.median(values)),
                ff_sd=float(np.std(values, ddof=1)) if values.size > 1 else float("nan"),
                ff_p05=float(p05),
                ff_p95=float(p95),
                erosion_mm=0.0,
                slices="all",
                flags=tuple((flags or {}).get(label, ())) + (("partial_fov",) if faces else ()),
            )
        )
    return tuple(rows)
