"""Segmentation speed: ``vertebrafat segment`` end to end on a 20-slice 256x256 phantom DICOM study,
per-stage times, model GFLOPs and GFLOP/s, peak RSS; the study's reference U-Net in torch eager
and in ONNX Runtime beside it. Run: ``python benchmarks/bench_segment.py`` (2 threads).

The study is the phantom's first subject written as GE DICOM when ``vertebrafat.phantom``
exists, else 20 MyoSegmenTUM slices (FOV padded to 320 mm, 256x256 at 1.25 mm) with a synthetic
fat image, written as GE DICOM. The table says which.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vertebrafat.core.image import WaterFatImage
from vertebrafat.segmentation.inference import (
    canonical_input,
    class_probabilities,
    postprocess,
    predict,
    resample_linear,
    run_network,
)
from vertebrafat.workflows.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
MYO = ROOT.parent / "shared" / "data" / "myosegmentum" / "myo01"
STUDY_S, TARGET_E2E_S, TARGET_INFER_S, TARGET_RSS_MB = 16.0, 1.0, 0.25, 1024.0


def best_of(fn: Callable[[], Any], repeats: int = 5) -> tuple[float, Any]:
    """Fastest wall time of ``repeats`` calls (after one warm-up) and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def myo_study() -> WaterFatImage:
    """20 sagittal slices (3 mm apart) of MyoSegmenTUM myo01, FOV padded to 320 mm and resampled
    to 256 x 256 (1.25 mm), with a synthetic fat image (FF 10-60 %) so the study has W/F/FF."""
    import nibabel as nib

    from vertebrafat.waterfat.fraction import ff_from_water_fat

    nii = nib.load(str(MYO / "water.nii.gz"))
    water = np.asarray(nii.dataobj, dtype=np.float32)[8:68:3]
    water = resample_linear(np.pad(water, ((0, 0), (48, 48), (48, 48))), (256, 256)) + 1.0
    fat = (0.1 + 0.5 * (1 - water / water.max())) * water
    affine = np.asarray(nii.affine, dtype=np.float64) @ np.diag([3.0, 1.25, 1.25, 1.0])
    ff = ff_from_water_fat(water, fat.astype(np.float32))
    return WaterFatImage(water=water, fat=fat.astype(np.float32), ff=ff, affine=affine)


def benchmark_study(folder: Path) -> tuple[Path, WaterFatImage, str]:
    """Write a 20-slice 256x256 GE-style DICOM study: the phantom if it exists, else
    :func:`myo_study`. Returns the folder, the image and where it came from."""
    from vertebrafat.io.dicom.write import save_dicom_study

    try:
        from vertebrafat.phantom import generate_subject  # type: ignore[import-not-found]

        # seed 0, index 12 is the first phantom subject acquired as 20 slices of 256 x 256
        image, source = generate_subject(seed=0, index=12).image, "phantom seed 0 P013"
        assert image.shape == (20, 256, 256), image.shape
    except ImportError:
        image, source = myo_study(), "MyoSegmenTUM myo01 + synthetic fat (no phantom yet)"
    save_dicom_study(
        image, folder, vendor="ge", patient_name="BENCH^SEGMENT", patient_id="B001", uid_seed=0
    )
    return folder, image, source


def end_to_end(study: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``vertebrafat segment STUDY OUT`` in a subprocess."""
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "vertebrafat", "segment", str(study), out],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def stages(image: WaterFatImage, study: Path) -> dict[str, float]:
    """Per-stage best-of-5 seconds of the in-process pipeline with the shipped model."""
    model = load_model()
    card = model.card
    times: dict[str, float] = {}
    from vertebrafat.workflows.loading import load_study

    times["load"], image = best_of(lambda: load_study(study))
    times["preprocess"], (x, _axes) = best_of(lambda: canonical_input(image, card))
    times["inference"], logits = best_of(
        lambda: run_network(model.session, x, divisor=card.divisor)
    )

    def post() -> Any:
        p = resample_linear(class_probabilities(logits), image.shape[1:])
        return postprocess(
            np.argmax(p, axis=1) == 1, voxel_ml=0.001, min_component_ml=card.min_component_ml
        )

    times["postprocess"], mask = best_of(post)
    with tempfile.TemporaryDirectory() as tmp:
        from vertebrafat.io.nifti import save_labels

        times["write labels"], _ = best_of(
            lambda: save_labels(mask.astype(np.uint8), image.affine, Path(tmp) / "l.nii.gz")
        )
    times["predict() total"], _ = best_of(lambda: predict(model, image))
    times["model_input_hw"] = float(x.shape[2] * x.shape[3])
    return times


def reference_torch(n_slices: int = 20) -> dict[str, float]:
    """The study's U-Net (4 channels, 256x256) in torch eager and ONNX Runtime, 2 threads."""
    import onnxruntime as ort
    import torch

    from vertebrafat.train.export import onnx_bytes
    from vertebrafat.train.network import CONFIGS, build_network, gflops_per_slice

    torch.set_num_threads(2)
    net = build_network(CONFIGS["reference"], in_channels=4, out_channels=1).eval()
    x = torch.rand(n_slices, 4, 256, 256)
    with torch.no_grad():
        eager, _ = best_of(lambda: net(x), repeats=3)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(
        onnx_bytes(net, n_planes=4), opts, providers=["CPUExecutionProvider"]
    )
    onnx_s, _ = best_of(lambda: sess.run(None, {"x": x.numpy()}), repeats=3)
    return {
        "gflops": gflops_per_slice(net, height=256, width=256),
        "eager_s": eager,
        "onnx_s": onnx_s,
    }


def shipped_gflops(hw: float) -> float:
    """GFLOPs per slice of the shipped network at its actual input size (``hw`` pixels)."""
    import torch

    from vertebrafat.train.network import CONFIGS, build_network, gflops_per_slice

    card = load_model().card
    net = build_network(
        CONFIGS["default"], in_channels=card.n_planes, out_channels=len(card.classes)
    )
    torch.set_num_threads(2)
    return gflops_per_slice(net, height=256, width=256) * hw / (256 * 256)


def row(name: str, value: float | str, target: float | str = "-", study: float | str = "-") -> None:
    """One table line: measure, vertebrafat, target, the study (Zhou et al. 2020)."""
    cells = [f"{c:14.4g}" if isinstance(c, float) else f"{c:>14s}" for c in (value, target, study)]
    print(f"{name:40s} {' '.join(cells)}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        study, image, source = benchmark_study(Path(tmp) / "dicom")
        e2e = end_to_end(study)
        t = stages(image, study)
    gf = shipped_gflops(t.pop("model_input_hw"))
    ref = reference_torch()
    n = image.shape[0]
    spacing = np.round(image.spacing_mm, 3).tolist()
    print(f"study: {n} x {image.shape[1]} x {image.shape[2]}, spacing {spacing} mm, {source}")
    row("measure", "vertebrafat", "target", "study")
    row("segment end to end (s)", e2e[0], TARGET_E2E_S, STUDY_S)
    row("peak RSS of segment (MB)", e2e[1], TARGET_RSS_MB)
    for name, secs in t.items():
        row(f"{name} (s)", secs, TARGET_INFER_S if name == "inference" else "-")
    row("model GFLOP per slice", gf, "-", ref["gflops"])
    row("achieved GFLOP/s (inference)", gf * n / t["inference"])
    row("reference U-Net torch eager, 20 sl (s)", ref["eager_s"])
    row("reference U-Net ONNX Runtime, 20 sl (s)", ref["onnx_s"])
    row("reference GFLOP/s (torch eager)", ref["gflops"] * 20 / ref["eager_s"])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row("peak RSS of this benchmark (MB)", rss_mb)


if __name__ == "__main__":
    main()
