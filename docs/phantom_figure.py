"""Make ``docs/phantom_vs_myosegmentum.png``: a MyoSegmenTUM water slice beside a phantom.

Run: ``python docs/phantom_figure.py`` (needs ../shared/data/myosegmentum). Panels: myo01's
mid-sagittal water image; phantom seed 1 P001's mid-sagittal water image and FF map; a
parasagittal phantom slice through the rib heads with the rib truth outlined.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

from vertebrafat.phantom import generate_subject

ROOT = Path(__file__).resolve().parents[1]
MYO = ROOT.parent / "shared" / "data" / "myosegmentum" / "myo01" / "water.nii.gz"


def main() -> None:
    real = nib.load(str(MYO))
    water_real = np.asarray(real.dataobj, dtype=np.float32)
    mid_real = water_real.shape[0] // 2
    study = generate_subject(seed=1, index=0)
    water, ff = study.image.water, study.image.ff
    assert ff is not None
    mid = water.shape[0] // 2
    # the slice through T12 (label 19) with the most rib voxels
    with_t12 = (study.labels == 19).any(axis=(1, 2))
    score = np.where(with_t12, study.ribs.sum(axis=(1, 2)), -1)
    lateral = int(np.argmax(score)) if score.max() > 0 else mid
    spacing = study.image.spacing_mm
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    panels = (
        (water_real[mid_real], "gray", f"MyoSegmenTUM myo01 water (slice {mid_real})"),
        (water[mid], "gray", f"phantom seed 1 P001 water (slice {mid}, {spacing[0]:.1f} mm)"),
        (ff[mid], "magma", "phantom FF (%)"),
        (water[lateral], "gray", f"phantom slice {lateral}: rib truth (red), T12 (cyan)"),
    )
    for ax, (img, cmap, title) in zip(axes, panels, strict=True):
        hi = np.percentile(img, 99.5) if cmap == "gray" else 100
        ax.imshow(img, cmap=cmap, vmin=0, vmax=hi)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    axes[3].contour(study.ribs[lateral], [0.5], colors="red", linewidths=0.6)
    axes[3].contour(study.labels[lateral] == 19, [0.5], colors="cyan", linewidths=0.6)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "phantom_vs_myosegmentum.png", dpi=80)


if __name__ == "__main__":
    main()
