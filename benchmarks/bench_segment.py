"""Segmentation speed: ``vertebrafat segment`` on a 20-slice 256x256 GE-like DICOM study (four
maps), cold, against the import floor; per-stage times; the network's GFLOP/s against a measured
fp32 peak. Run: ``python benchmarks/bench_segment.py [--rounds 9] [--reference]``.

1. Interleaved rounds (noise from other jobs then hits both alike): the floor (``python -c
   "import numpy, onnxruntime, pydicom"``, what any such tool pays), ``vertebrafat segment
   STUDY OUT`` (every output written) and ``vertebrafat --help``, each a fresh process. Printed:
   medians and minima, the own time (segment minus floor, paired per round; issue 16: at most
   0.65 s), the peak RSS of ``segment``, the ratio to the reference study's 16 s per series.
2. Stages of a cold run: a fresh process runs ``segment`` with a timer around each stage; it
   imports the modules first (the import is its own line), so the stages do not overlap as in
   the real command, where scipy loads while the network runs.
3. The network alone (the shipped model, its own session, best of 5) in GFLOP/s, against the
   fp32 peak measured here as the best of ONNX Runtime MatMuls of 2048^3 on the same 2 threads
   (MLAS AVX-512 kernels; needs ``onnx``, in the ``train`` extra), and against the nominal peak
   (2 cores x 2 FMA units x 16 fp32 lanes x 2 FLOP x the clock /proc/cpuinfo reports).
4. ``--reference``: the study's U-Net (4 channels, 256x256) in torch eager and ONNX Runtime.

The study is the phantom's subject 12 of seed 0 (20 x 256 x 256) written as GE DICOM. The
package's bytecode is compiled first, as ``pip install`` leaves it: with
``PYTHONDONTWRITEBYTECODE`` set (this machine and its CI set it), an editable install would
otherwise compile vertebrafat's modules from source in every run, about 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STUDY_S, TARGET_OWN_S, TARGET_HELP_S, TARGET_FRACTION = 16.0, 0.65, 0.25, 0.40
FLOOR = [sys.executable, "-c", "import numpy, onnxruntime, pydicom"]
# the stages timed in a cold run: (module, function, label); patched in place, in this order
STAGES = [
    ("vertebrafat.workflows.loading", "load_study", "read DICOM study"),
    ("vertebrafat.workflows.loading", "load_model", "open model session"),
    ("vertebrafat.segmentation.inference", "canonical_input", "preprocess (resample in)"),
    ("vertebrafat.segmentation.inference", "run_network", "network (ONNX Runtime)"),
    ("vertebrafat.segmentation.inference", "postprocess", "clean masks"),
    ("vertebrafat.segmentation.inference", "predict", "predict (all of the above 3+)"),
    ("vertebrafat.workflows.study", "label_segmentation", "name levels"),
    ("vertebrafat.workflows.study", "bmf_table", "measure"),
    ("vertebrafat.workflows.study", "render_qc", "QC picture"),
    ("vertebrafat.workflows.outputs", "save_volume", "write probability.nii.gz (thread)"),
    ("vertebrafat.io.seg", "save_dicom_seg", "write seg.dcm (thread)"),
    ("vertebrafat.workflows.outputs", "save_labels", "write labels.nii.gz"),
    ("vertebrafat.workflows.outputs", "png_bytes", "encode qc.png"),
    ("vertebrafat.workflows.outputs", "write_study_outputs", "write outputs (all)"),
]


def benchmark_study(folder: Path) -> tuple[Path, tuple[int, ...]]:
    """Write the phantom's subject 12 of seed 0 (20 x 256 x 256) as a GE DICOM study."""
    from vertebrafat.io.dicom.write import save_dicom_study
    from vertebrafat.phantom import generate_subject

    image = generate_subject(seed=0, index=12).image
    assert image.shape == (20, 256, 256), image.shape
    save_dicom_study(
        image, folder, vendor="ge", patient_name="BENCH^SEGMENT", patient_id="B001", uid_seed=0
    )
    return folder, image.shape


def compile_bytecode() -> str:
    """Compile the installed package's modules to ``__pycache__`` (what ``pip install`` does)."""
    import compileall

    import vertebrafat

    folder = Path(vertebrafat.__file__).parent
    compileall.compile_dir(folder, quiet=1)
    return str(folder)


def timed(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of ``command`` in a fresh
    process (output discarded)."""
    t = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def interleaved(study: Path, rounds: int) -> dict[str, np.ndarray]:
    """``rounds`` x (floor, segment, --help), each a fresh process; wall seconds and RSS."""
    runs: dict[str, list[float]] = {k: [] for k in ("floor", "floor_cpu", "segment",
                                                     "segment_cpu", "help", "rss")}
    cli = [sys.executable, "-m", "vertebrafat"]
    for _ in range(rounds):
        wall, cpu, _ = timed(FLOOR)
        runs["floor"].append(wall)
        runs["floor_cpu"].append(cpu)
        with tempfile.TemporaryDirectory() as out:
            wall, cpu, rss = timed([*cli, "segment", str(study), str(Path(out) / "o")])
        runs["segment"].append(wall)
        runs["segment_cpu"].append(cpu)
        runs["rss"].append(rss)
        runs["help"].append(timed([*cli, "--help"])[0])
    return {k: np.asarray(v) for k, v in runs.items()}


def stage_run(study: Path, out: Path) -> None:
    """(``--stages``) Run ``segment`` in this fresh process with a timer around each stage;
    print one JSON object: label -> seconds (summed over calls)."""
    import contextlib
    import importlib
    import io

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    from vertebrafat import cli

    for module, _, _ in STAGES:
        importlib.import_module(module)
    times["imports (CLI and every stage's modules)"] = time.perf_counter() - t0

    def timer(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[label] = times.get(label, 0.0) + time.perf_counter() - t

        return run

    for module, name, label in STAGES:
        mod = importlib.import_module(module)
        setattr(mod, name, timer(getattr(mod, name), label))
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["segment", str(study), str(out)])
    times["segment command (after imports)"] = time.perf_counter() - t
    if code:
        raise SystemExit(code)
    print(json.dumps(times))


def stages(study: Path, repeats: int = 3) -> dict[str, float]:
    """Median per stage of ``repeats`` cold :func:`stage_run` processes."""
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run(
                [sys.executable, __file__, "--stages", str(study), str(Path(out) / "o")],
                check=True, capture_output=True, text=True,
            )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def network_gflops(study: Path) -> tuple[float, float, float, tuple[int, ...]]:
    """(GFLOP of one forward pass of the study, best seconds of 5, GFLOP/s, input shape)."""
    from vertebrafat.segmentation.inference import canonical_input, run_network
    from vertebrafat.workflows.loading import load_model, load_study

    model = load_model()
    card = model.card
    x, _ = canonical_input(load_study(study), card)
    best, _ = best_of(lambda: run_network(model.session, x, divisor=card.divisor))
    gflop = shipped_gflop_per_slice(x.shape[2], x.shape[3], card.divisor) * x.shape[0]
    return gflop, best, gflop / best, x.shape


def shipped_gflop_per_slice(rows: int, cols: int, divisor: int) -> float:
    """GFLOP per slice of the shipped network at its padded input size (needs torch)."""
    import torch

    from vertebrafat.train.network import CONFIGS, build_network, gflops_per_slice
    from vertebrafat.workflows.loading import load_model

    card = load_model().card
    net = build_network(
        CONFIGS["default"], in_channels=card.n_planes, out_channels=len(card.classes)
    )
    torch.set_num_threads(2)
    pad = [n + (-n) % divisor for n in (rows, cols)]
    return float(gflops_per_slice(net, height=pad[0], width=pad[1]))


def measured_peak(n: int = 2048, threads: int = 2) -> float:
    """Best GFLOP/s of an fp32 ``n^3`` MatMul in ONNX Runtime (MLAS) on ``threads`` threads."""
    import onnx
    from onnx import TensorProto, helper

    from vertebrafat.segmentation.model import onnxruntime

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "peak",
        [helper.make_tensor_value_info(v, TensorProto.FLOAT, [n, n]) for v in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(onnx._serialize(model) if hasattr(onnx, "_serialize")
                                   else model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    best, _ = best_of(lambda: session.run(None, {"a": a, "b": a}), repeats=5)
    return 2 * n**3 / best / 1e9


def nominal_peak(cores: int = 2) -> tuple[float, float]:
    """(GFLOP/s, GHz): cores x 2 FMA units x 16 fp32 lanes (AVX-512) x 2 FLOP x the clock
    /proc/cpuinfo reports (the base clock under a hypervisor; boost is higher)."""
    mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
           if line.startswith("cpu MHz")]
    ghz = max(mhz) / 1000 if mhz else float("nan")
    return cores * 2 * 16 * 2 * ghz, ghz


def best_of(fn: Callable[[], Any], repeats: int = 5) -> tuple[float, Any]:
    """Fastest wall time of ``repeats`` calls (after one warm-up) and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


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


def row(name: str, value: float | str, target: float | str = "-", study: float | str = "-") -> None:
    """One table line: measure, vertebrafat, target, the study (Zhou et al. 2020)."""
    cells = [f"{c:14.3f}" if isinstance(c, float) else f"{c:>14s}" for c in (value, target, study)]
    print(f"{name:44s} {' '.join(cells)}")


def machine() -> str:
    """CPU model (with its family and model numbers: a virtual machine's model name may be
    only "AMD EPYC", and two such hosts differ twofold in vector throughput), cores and the
    load average now."""
    fields: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "CPU")
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{name} x {os.cpu_count()} cores, load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--stages", nargs=2, type=Path, metavar=("STUDY", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stages:
        stage_run(*args.stages)
        return
    print(f"machine: {machine()}")
    print(f"bytecode compiled: {compile_bytecode()}")
    with tempfile.TemporaryDirectory() as tmp:
        study, shape = benchmark_study(Path(tmp) / "dicom")
        runs = interleaved(study, args.rounds)
        parts = stages(study)
        gflop, net_s, rate, x_shape = network_gflops(study)
    own = runs["segment"] - runs["floor"]
    print(f"study: {' x '.join(map(str, shape))} GE DICOM, 4 maps; {args.rounds} interleaved "
          f"rounds; load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    row("measure", "vertebrafat", "target", "study")
    row("floor: import numpy, onnxruntime, pydicom (s)", float(np.median(runs["floor"])))
    row("segment end to end, median (s)", float(np.median(runs["segment"])),
        "floor + 0.65", STUDY_S)
    row("segment end to end, min (s)", float(runs["segment"].min()))
    row("own time = segment - floor, median (s)", float(np.median(own)), TARGET_OWN_S)
    row("own time, min (s)", float(own.min()), TARGET_OWN_S)
    row("segment CPU time (user + system), median (s)", float(np.median(runs["segment_cpu"])))
    row("floor CPU time, median (s)", float(np.median(runs["floor_cpu"])))
    row("vertebrafat --help, median (s)", float(np.median(runs["help"])), TARGET_HELP_S)
    row("peak RSS of segment (MB)", float(runs["rss"].max()))
    row("study's time / ours (x)", STUDY_S / float(np.median(runs["segment"])))
    print("stages of a cold run (median of 3; see the docstring)")
    for name, secs in parts.items():
        row(f"  {name} (s)", secs)
    print(f"network: input {' x '.join(map(str, x_shape))}")
    row("network GFLOP per study", gflop)
    row("network alone, best of 5 (s)", net_s)
    row("network GFLOP/s", rate)
    nominal, ghz = nominal_peak()
    try:
        peak = measured_peak()
    except ImportError:
        peak = float("nan")
    row("fp32 peak measured: ORT MatMul 2048^3 (GFLOP/s)", peak)
    row(f"fp32 peak nominal at {ghz:.2f} GHz (GFLOP/s)", nominal)
    row("fraction of measured peak", rate / peak, TARGET_FRACTION)
    row("fraction of nominal peak", rate / nominal, TARGET_FRACTION)
    if args.reference:
        ref = reference_torch()
        row("reference U-Net GFLOP per slice", ref["gflops"])
        row("reference U-Net torch eager, 20 sl (s)", ref["eager_s"])
        row("reference U-Net ONNX Runtime, 20 sl (s)", ref["onnx_s"])
        row("reference GFLOP/s (torch eager)", ref["gflops"] * 20 / ref["eager_s"])


if __name__ == "__main__":
    main()
