"""ONNX export and the JSON model card (DESIGN.md: NAME.onnx beside NAME.json)."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vertebrafat.core.errors import ModelError
from vertebrafat.core.model_card import ModelCard
from vertebrafat.io.atomic import write_bytes_atomic, write_text_atomic
from vertebrafat.train.network import UNet


def onnx_bytes(net: UNet, *, n_planes: int, opset: int = 17) -> bytes:
    """Serialise ``net`` (eval mode) to ONNX: input ``x`` ``(n, planes, h, w)``, output
    ``logits``; batch, height and width are dynamic."""
    net.eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        path = Path(tmp) / "model.onnx"
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, n_planes, 64, 64),),
            path,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
            opset_version=opset,
            dynamo=False,
        )
        return path.read_bytes()


def max_onnx_difference(net: UNet, blob: bytes, x: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime logits on ``x``."""
    from vertebrafat.segmentation.model import onnxruntime

    ort = onnxruntime()

    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(x)).numpy()
    got = session.run(None, {"x": x})[0]
    return float(np.max(np.abs(ref - got)))


def card_json(card: ModelCard, *, sha256: str, info: dict[str, Any]) -> dict[str, Any]:
    """The model card as a JSON object (what :func:`vertebrafat.io.model.card_from_json` reads)."""
    context = [f"water_{kind}_{d:g}mm" for d in card.context_mm for kind in ("mean", "absdiff")]
    planes = [*card.channels, *context, *(f"has_{c}" for c in card.optional_channels)]
    return {
        "name": card.name,
        "format_version": 1,
        "onnx_file": f"{card.name}.onnx",
        "sha256": sha256,
        "input": {
            "name": "x",
            "layout": "(slices, planes, rows, cols); rows head->feet, cols anterior->posterior",
            "channels": list(card.channels),
            "optional_channels": list(card.optional_channels),
            "required_channels": list(card.required_channels),
            "planes": planes,
            "pixel_spacing_mm": card.pixel_spacing_mm,
            "context_mm": list(card.context_mm),
            "divisor": card.divisor,
            "normalisation": {
                "water_fat_percentile": card.water_percentile,
                "water": "water / percentile(water[water > 0], 99)",
                "fat": "fat / percentile(fat[fat > 0], 99)",
                "ff_divisor": card.ff_divisor,
                "ff": "clip(ff_percent / 100, -0.5, 1.5)",
                "r2star_divisor_per_s": card.r2star_divisor_per_s,
                "r2star": "clip(r2star_per_s / 200, 0, 5)",
                "missing_optional": "zeros, presence plane 0",
            },
        },
        "output": {
            "name": "logits",
            "classes": list(card.classes),
            "activation": "sigmoid" if len(card.classes) == 1 else "softmax",
            "threshold": card.threshold,
            "decision": "threshold on p(vertebral_body)" if len(card.classes) == 1 else "argmax",
            "min_component_ml": card.min_component_ml,
            "postprocess": "remove 3D components < min_component_ml, fill holes per slice",
        },
        **info,
    }


def write_model(out: Path, card: ModelCard, blob: bytes, info: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``out/NAME.onnx`` and ``out/NAME.json`` atomically; returns both paths."""
    import hashlib

    if not blob:
        raise ModelError(f"{out}: empty ONNX export")
    onnx_path, card_path = out / f"{card.name}.onnx", out / f"{card.name}.json"
    write_bytes_atomic(onnx_path, blob)
    data = card_json(card, sha256=hashlib.sha256(blob).hexdigest(), info=info)
    write_text_atomic(card_path, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return onnx_path, card_path
