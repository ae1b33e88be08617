"""Model configurations side by side on the MyoSegmenTUM subjects each model held out.

Run: ``python benchmarks/bench_models.py [MODEL.onnx ...] [--cv runs/cv-default ...]``
(default: the shipped model and every ``runs/cmp-*/*.onnx``, e.g. the reference configuration
(a) and the default (b) trained by the same command on the same split; see the README's
benchmark section). ``--cv PREFIX`` pools the five ``PREFIX-f0`` .. ``PREFIX-f4`` models of a
cross-validation (``vertebrafat train --fold K``): every subject scored by the model that held
it out. For each model: its
card's held-out subjects scored water-only on the native grid, per-vertebra Dice (Voronoi share
of the loss region, the card's figure) and named per-vertebra Dice (after ``label_vertebrae``,
a wrongly named body scores 0), per-subject Dice, ONNX Runtime time for 20 slices, parameters,
GFLOP per 256x256 slice and training-loop time (summed over resumes), beside the study's 0.849.
Skips with a message when ``../shared/data/myosegmentum`` is absent.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vertebrafat.segmentation.inference import predict, run_network
from vertebrafat.train.dataset import load_subject
from vertebrafat.train.validation import SubjectScores, score_subjects, summarise
from vertebrafat.workflows.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
MYO = ROOT.parent / "shared" / "data" / "myosegmentum"
SHIPPED = ROOT / "src" / "vertebrafat" / "models" / "vertebrafat-unet-default.onnx"
STUDY_DICE = 0.849


def held_out(card: dict[str, Any]) -> list[str]:
    """The MyoSegmenTUM subjects a model's card held out (its phantom names are skipped)."""
    names = (s.split("/")[-1] for s in card["training"]["validation_subjects"])
    return [n for n in names if (MYO / n).is_dir()]


def onnx_seconds(net: Any) -> float:
    """ONNX Runtime seconds for 20 random 256x256 slices (after a warm-up run)."""
    x = np.random.default_rng(0).standard_normal(
        (20, net.card.n_planes, 256, 256)).astype(np.float32)
    run_network(net.session, x[:2], divisor=net.card.divisor)
    t0 = time.perf_counter()
    run_network(net.session, x, divisor=net.card.divisor)
    return time.perf_counter() - t0


def row(name: str, scores: list[SubjectScores], net: Any, card: dict[str, Any],
        *, train_s: float, epochs: int) -> dict[str, Any]:
    """One table row: pooled water-only scores, speed and size of ``net``."""
    res = summarise(scores)
    return {
        "name": name,
        "subjects": len(scores),
        "vertebra": res["per_vertebra"],
        "named": res["per_vertebra_named"],
        "subject": res["per_subject"],
        "per_level_named": res["per_level_named"],
        "infer_s": onnx_seconds(net),
        "params_m": card["architecture"]["parameters"] / 1e6,
        "gflops": card["architecture"]["gflops_per_256x256_slice"],
        "train_min": train_s / 60,
        "epochs": epochs,
    }


def score(path: Path) -> dict[str, Any]:
    """Held-out accuracy and speed of the model at ``path``."""
    net = load_model(path)
    card = json.loads(path.with_suffix(".json").read_text())
    subjects = [load_subject(MYO / n, annotated=False) for n in held_out(card)]
    scores = score_subjects(subjects, lambda im: predict(net, im), ("water",))
    return row(f"{card['architecture']['config']} ({path.parent.name})", scores, net, card,
               train_s=card["training"]["train_loop_s"],  # cumulative over resumes
               epochs=card["training"]["epochs_run"])


def cross_validation(prefix: Path) -> dict[str, Any]:
    """Pooled held-out scores of the fold models ``PREFIX-f[0-4]/*.onnx`` (water only)."""
    paths = sorted(prefix.parent.glob(f"{prefix.name}-f[0-4]/*.onnx"))
    if len(paths) != 5:
        print(f"warning: {prefix}: {len(paths)} fold models ({prefix.name}-f0..f4), not 5")
    if not paths:
        raise SystemExit(f"{prefix}: no fold models {prefix.name}-f[0-4]/*.onnx")
    scores: list[SubjectScores] = []
    seen: set[str] = set()
    train_s, epochs = 0.0, 0
    for path in paths:
        net = load_model(path)
        card = json.loads(path.with_suffix(".json").read_text())
        train_s += card["training"]["train_loop_s"]
        epochs += card["training"]["epochs_run"]
        names = held_out(card)
        for name in seen.intersection(names):
            print(f"warning: {name} held out by more than one fold; scored once")
        subjects = [load_subject(MYO / n, annotated=False) for n in names if n not in seen]
        seen.update(names)
        scores += score_subjects(subjects, lambda im, net=net: predict(net, im), ("water",))
    return row(f"{card['architecture']['config']} CV x{len(paths)} ({prefix.name})", scores,
               net, card, train_s=train_s, epochs=epochs)  # loop time and epochs: all folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--cv", nargs="*", type=Path, default=[],
                        help="cross-validation prefixes (runs/cv-default for runs/cv-default-f*)")
    args = parser.parse_args()
    if not MYO.is_dir():
        print(f"MyoSegmenTUM not found at {MYO}: skipped")
        return
    models = args.models or ([] if args.cv else
                             [SHIPPED, *sorted((ROOT / "runs").glob("cmp-*/*.onnx"))])
    rows = [score(p) for p in models] + [cross_validation(p) for p in args.cv]

    def ms(s: dict[str, Any]) -> str:
        return f"{s['mean']:.3f} ± {s['sd']:.3f}"

    print(f"{'model':28s} {'n':>3s} {'vertebra Dice':>15s} {'named Dice':>15s} "
          f"{'subject Dice':>15s} {'20 sl. s':>8s} {'M par':>6s} {'GFLOP':>6s} "
          f"{'loop min':>9s} {'epochs':>6s}")
    for r in rows:
        print(f"{r['name']:28s} {r['subjects']:>3d} {ms(r['vertebra']):>15s} "
              f"{ms(r['named']):>15s} {ms(r['subject']):>15s} {r['infer_s']:>8.3f} "
              f"{r['params_m']:>6.2f} {r['gflops']:>6.2f} {r['train_min']:>9.1f} "
              f"{r['epochs']:>6d}")
    for r in rows:
        if "CV" in r["name"]:
            levels = ", ".join(f"{k} {v['mean']:.3f} ± {v['sd']:.3f}"
                               for k, v in r["per_level_named"].items())
            print(f"{r['name']}: named per level {levels}")
    print(f"{'study U-Net (published)':28s} {'31':>3s} {'-':>15s} {'-':>15s} "
          f"{STUDY_DICE:>15.3f} {'16 s*':>8s}   (*20 slices end to end, 4-core CPU)")
    print("target (issue 4): per-vertebra Dice >= 0.93 on held-out MyoSegmenTUM subjects")


if __name__ == "__main__":
    main()
