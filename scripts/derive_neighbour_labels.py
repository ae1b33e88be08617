"""Derive T12 and sacrum labels for the MyoSegmenTUM subjects, which carry manual L1-L5 only.

Issue 14: the model's sacrum class was learnt from the phantom alone. Real anatomy for it (and a
T12 body) comes from the manual L1-L5 masks plus the shipped model's body and sacrum masks:
every predicted piece below the annotated L5 and on the spine's line is sacrum (26), the first
predicted body above the annotated L1 is T12 (19). Nothing is guessed where the model found
nothing; a reviewer looks at every subject's picture and lists what to drop in
``scripts/neighbour_labels_review.json`` (subject -> {"drop": ["T12"|"sacrum"], "why": ...}).

    .venv/bin/python scripts/derive_neighbour_labels.py [--out work-data/myo_neighbours] \
        [--model MODEL.onnx]

The labels depend on the model they are derived with. The shipped model (2026-12-03) was
trained on labels derived with its predecessor, the model of commit a6cd712:
``git show a6cd712:src/vertebrafat/models/vertebrafat-unet-default.onnx > old.onnx`` (and
``.json``), then ``--model old.onnx``.

Writes one folder per subject (``water.nii.gz`` as read, ``labels.nii.gz`` with 19/26 added,
``annotated_slices.json`` copied when present), ``derived.json`` (per subject: what was added,
volumes, distances) and ``qc_montage.png`` (mid-sagittal water, L1-L5 in their colours, T12 and
sacrum outlined). The data stay outside the repository (``work-data/`` is ignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from vertebrafat.levels.instances import split_instances

ROOT = Path(__file__).resolve().parents[1]
MYO = ROOT.parent / "shared" / "data" / "myosegmentum"
REVIEW = Path(__file__).with_name("neighbour_labels_review.json")

LATERAL_MM = 20.0  # a piece whose centre is further left or right of L1-L5 is not on the spine
GAP_MM = 25.0  # the T12 body starts within this of L1's top (one disc, about 10 mm)
MIN_ML = 2.0  # smaller pieces are not a body (outline specks around the manual masks)


def _axis(labels: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L5 centroid and the unit vector from L5 to L1, in RAS mm."""
    def centre(label: int) -> np.ndarray:
        idx = np.argwhere(labels == label).mean(axis=0)
        return affine[:3, :3] @ idx + affine[:3, 3]

    l1, l5 = centre(20), centre(24)
    up = (l1 - l5) / np.linalg.norm(l1 - l5)
    return l5, up


def _project(points_vox: np.ndarray, affine: np.ndarray, origin: np.ndarray, up: np.ndarray) -> (
    tuple[np.ndarray, np.ndarray]
):
    """Position along ``up`` and left-right offset from the L1-L5 line (mm) of voxel indices.

    Only the left-right offset counts: lordosis puts the sacrum 20-30 mm behind the L1-L5 line.
    """
    mm = points_vox @ affine[:3, :3].T + affine[:3, 3] - origin
    along = mm @ up
    across = np.abs((mm - np.outer(along, up))[:, 0])
    return along, across


def derive(labels: np.ndarray, seg: object, affine: np.ndarray) -> (
    tuple[np.ndarray, dict[str, object]]
):
    """Labels with T12 (19) and sacrum (26) added from the segmentation ``seg``."""
    lumbar = np.isin(labels, (20, 21, 22, 23, 24))
    origin, up = _axis(labels, affine)
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    lum_along, _ = _project(np.argwhere(lumbar), affine, origin, up)
    top_l1 = float(_project(np.argwhere(labels == 20), affine, origin, up)[0].max())
    bottom_l5 = float(_project(np.argwhere(labels == 24), affine, origin, up)[0].min())
    near = ndi.binary_dilation(lumbar, iterations=3)
    pred = (np.asarray(seg.mask) | (seg.sacrum if seg.sacrum is not None else False)) & ~near  # type: ignore[attr-defined]
    comps, n = split_instances(pred, affine)  # bridged discs cut: T11 never rides with T12
    out = labels.copy()
    info: dict[str, object] = {"pieces": []}
    t12: tuple[float, int] | None = None
    sacral: list[int] = []
    for k in range(1, n + 1):
        piece = comps == k
        ml = float(piece.sum()) * voxel_ml
        along, across = _project(np.argwhere(piece), affine, origin, up)
        centre_along, centre_across = float(along.mean()), float(np.median(across))
        sac_share = float((seg.sacrum[piece]).mean()) if seg.sacrum is not None else 0.0  # type: ignore[attr-defined]
        row = {"ml": round(ml, 2), "along_mm": round(centre_along, 1),
               "above_l1_mm": round(float(along.min()) - top_l1, 1),
               "across_mm": round(centre_across, 1), "sacrum_share": round(sac_share, 2)}
        if ml < MIN_ML or centre_across > LATERAL_MM:
            row["verdict"] = "ignored"
        elif centre_along < bottom_l5:
            row["verdict"] = "sacrum"
            sacral.append(k)
        elif float(along.min()) > top_l1 - 5 and float(along.min()) - top_l1 < GAP_MM:
            row["verdict"] = "t12 candidate"
            if sac_share < 0.5 and (t12 is None or centre_along < t12[0]):
                t12 = (centre_along, k)
        else:
            row["verdict"] = "ignored"
        info["pieces"].append(row)  # type: ignore[union-attr]
    for k in sacral:
        out[comps == k] = 26
    if t12 is not None:
        out[comps == t12[1]] = 19
    info["t12_ml"] = round(float((out == 19).sum()) * voxel_ml, 1)
    info["sacrum_ml"] = round(float((out == 26).sum()) * voxel_ml, 1)
    info["lumbar_span_mm"] = round(float(lum_along.max() - lum_along.min()), 1)
    return out, info


COLOURS = {19: (80, 160, 255), 20: (230, 25, 75), 21: (60, 180, 75), 22: (255, 225, 25),
           23: (0, 130, 200), 24: (245, 130, 48), 26: (170, 110, 40)}


def picture(water: np.ndarray, labels: np.ndarray, title: str) -> Image.Image:
    """Mid-sagittal water (rows head -> feet, as stored) with labels blended in, and a title."""
    k = int(np.argmax((labels > 0).sum(axis=(1, 2))))
    w = water[k].astype(np.float64)
    grey = np.clip(w / max(np.percentile(w, 99.5), 1e-6), 0, 1) * 255
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for label, colour in COLOURS.items():
        sel = labels[k] == label
        edge = sel & ~ndi.binary_erosion(sel)
        rgb[sel] = 0.6 * rgb[sel] + 0.4 * np.array(colour)
        rgb[edge] = colour
    img = Image.fromarray(rgb.astype(np.uint8)).resize((220, int(220 * w.shape[0] / w.shape[1])))
    canvas = Image.new("RGB", (img.width, img.height + 16))
    canvas.paste(img, (0, 16))
    ImageDraw.Draw(canvas).text((2, 2), title, fill=(255, 255, 255))
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "work-data" / "myo_neighbours")
    parser.add_argument("--model", type=Path, default=None,
                        help="model .onnx whose masks the labels come from (default: shipped)")
    args = parser.parse_args(argv)
    if not MYO.is_dir():
        print(f"{MYO}: MyoSegmenTUM data not found (../shared/data/myosegmentum)", file=sys.stderr)
        return 2
    import vertebrafat as vf
    from vertebrafat.io.nifti import read_nifti, save_labels

    review = json.loads(REVIEW.read_text()) if REVIEW.is_file() else {}
    model = vf.load_model(args.model)
    record: dict[str, object] = {}
    tiles = []
    for folder in sorted(p for p in MYO.iterdir() if p.is_dir()):
        image = vf.load_study(folder / "water.nii.gz")
        labels = read_nifti(folder / "labels.nii.gz", as_float32=False)[0].astype(np.uint8)
        seg = vf.predict(model, image)
        derived, info = derive(labels, seg, image.affine)
        for part in review.get(folder.name, {}).get("drop", []):
            derived[derived == {"T12": 19, "sacrum": 26}[part]] = 0
            info[f"dropped_{part}"] = review[folder.name].get("why", "")
        dest = args.out / folder.name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / "water.nii.gz", dest / "water.nii.gz")
        save_labels(derived, image.affine, dest / "labels.nii.gz")
        if (folder / "annotated_slices.json").is_file():
            shutil.copyfile(folder / "annotated_slices.json", dest / "annotated_slices.json")
        record[folder.name] = info
        tiles.append(picture(image.water, derived,
                             f"{folder.name} T12 {info['t12_ml']} S {info['sacrum_ml']} mL"))
        print(f"{folder.name}: T12 {info['t12_ml']} mL, sacrum {info['sacrum_ml']} mL", flush=True)
    (args.out / "derived.json").write_text(json.dumps(record, indent=1) + "\n")
    cols = 6
    h = max(t.height for t in tiles)
    montage = Image.new("RGB", (cols * 220, h * ((len(tiles) + cols - 1) // cols)))
    for i, tile in enumerate(tiles):
        montage.paste(tile, ((i % cols) * 220, (i // cols) * h))
    montage.save(args.out / "qc_montage.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
