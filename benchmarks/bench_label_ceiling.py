"""How far blocky MyoSegmenTUM masks cap a per-vertebra Dice (issue 4's 0.93 target).

Run: ``python benchmarks/bench_label_ceiling.py``. The masks were drawn on native 3.9 mm
sagittal slices and resampled to 1 mm, so each level's mask is constant over runs of ~4
slices. A segmentation that follows the anatomy continuously cannot match such steps: here
each level's mask is interpolated smoothly between the centres of its runs (signed distance,
linear across slices; one run beyond each end is kept up to 2 slices out) and scored against
the blocky mask it came from. Prints per-level and per-vertebra Dice, mean ± SD over the 30
subjects. Skips with a message when ``../shared/data/myosegmentum`` is absent.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
MYO = ROOT.parent / "shared" / "data" / "myosegmentum"
LEVELS = {20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5"}
FAR = 50.0  # signed distance (mm) standing for "no body on this slice"


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Negative inside, positive outside (pixels; the grid is 1 mm)."""
    if not mask.any():
        return np.full(mask.shape, FAR)
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return np.asarray(outside - inside, dtype=np.float64)


def smooth_level(truth: np.ndarray) -> np.ndarray:
    """``truth`` (slices, rows, cols) interpolated between the centres of its constant runs."""
    n = truth.shape[0]
    changes = [i for i in range(1, n) if not np.array_equal(truth[i], truth[i - 1])]
    edges = [0, *changes, n]
    runs = [(a, b) for a, b in itertools.pairwise(edges) if b - a >= 3]
    centres = np.array([(a + b - 1) / 2 for a, b in runs])
    fields = [signed_distance(truth[a]) for a, _ in runs]
    out = np.zeros_like(truth)
    for i in range(n):
        if i <= centres[0]:
            field = fields[0] if i >= centres[0] - 2 else np.full(truth.shape[1:], FAR)
        elif i >= centres[-1]:
            field = fields[-1] if i <= centres[-1] + 2 else np.full(truth.shape[1:], FAR)
        else:
            k = int(np.searchsorted(centres, i)) - 1
            w = (i - centres[k]) / (centres[k + 1] - centres[k])
            field = (1 - w) * fields[k] + w * fields[k + 1]
        out[i] = field < 0
    return out


def main() -> None:
    if not MYO.is_dir():
        print(f"MyoSegmenTUM not found at {MYO}: skipped")
        return
    import nibabel as nib

    scores: dict[str, list[float]] = {name: [] for name in LEVELS.values()}
    for folder in sorted(p for p in MYO.iterdir() if (p / "labels.nii.gz").is_file()):
        labels = np.asarray(nib.load(str(folder / "labels.nii.gz")).dataobj)
        for value, name in LEVELS.items():
            truth = labels == value
            if truth.any():
                smooth = smooth_level(truth)
                scores[name].append(2 * (smooth & truth).sum() / (smooth.sum() + truth.sum()))
    every = [d for v in scores.values() for d in v]
    print(f"smooth-anatomy ceiling on blocky masks ({len(scores['L1'])} subjects)")
    for name, v in scores.items():
        print(f"  {name}: {np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}")
    print(f"  per vertebra: {np.mean(every):.3f} ± {np.std(every, ddof=1):.3f} (n = {len(every)})"
          f", min {np.min(every):.3f}")
    print("target (issue 4): per-vertebra Dice >= 0.93; the dataset's own baseline (held-out"
          " test subjects): 0.894")


if __name__ == "__main__":
    main()
