"""Model files: ``NAME.onnx`` beside its JSON model card ``NAME.json``.

:func:`read_model` checks the ONNX file's sha256 against the card and returns the card and the
verified bytes (the session is opened by :func:`vertebrafat.segmentation.model.open_session`);
the default is the model shipped in ``vertebrafat/models/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vertebrafat.core.errors import ModelError
from vertebrafat.core.model_card import ModelCard

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = "vertebrafat-unet-default"


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def card_from_json(data: dict[str, Any], *, source: str = "") -> ModelCard:
    """Build a :class:`~vertebrafat.core.model_card.ModelCard` from the card's JSON object.

    Raises
    ------
    ModelError
        If a required field is missing.
    """
    try:
        inp, outp, norm = data["input"], data["output"], data["input"]["normalisation"]
        return ModelCard(
            name=str(data["name"]),
            channels=tuple(inp["channels"]),
            optional_channels=tuple(inp["optional_channels"]),
            classes=tuple(outp["classes"]),
            pixel_spacing_mm=float(inp["pixel_spacing_mm"]),
            threshold=float(outp["threshold"]),
            divisor=int(inp["divisor"]),
            min_component_ml=float(outp["min_component_ml"]),
            water_percentile=float(norm["water_fat_percentile"]),
            ff_divisor=float(norm["ff_divisor"]),
            r2star_divisor_per_s=float(norm["r2star_divisor_per_s"]),
            context_mm=tuple(float(d) for d in inp.get("context_mm", [])),
            extra=data,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{source}: model card lacks or mangles field {exc}") from None


def model_paths(path: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """(onnx, card) paths for a model given as ``NAME.onnx``, ``NAME.json`` or ``None``."""
    base = MODELS_DIR / DEFAULT_MODEL if path is None else Path(path)
    if base.suffix in (".onnx", ".json"):
        base = base.with_suffix("")
    return base.with_suffix(".onnx"), base.with_suffix(".json")


def read_model(path: str | os.PathLike[str] | None = None) -> tuple[ModelCard, bytes, Path]:
    """Read ``NAME.onnx`` + ``NAME.json`` (default: the shipped model).

    Returns
    -------
    (card, onnx, onnx_path)
        The parsed card, the ONNX file's bytes (sha256 verified) and its path.

    Raises
    ------
    ModelError
        If a file is missing, the card is not valid JSON, or the ONNX file's sha256 differs
        from the card's ``sha256``.
    """
    onnx_path, card_path = model_paths(path)
    for p in (onnx_path, card_path):
        if not p.is_file():
            raise ModelError(f"{p}: model file not found")
    try:
        data = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc})") from None
    blob = onnx_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if data.get("sha256") != digest:
        raise ModelError(
            f"{onnx_path}: sha256 {digest[:12]}... does not match the model card's "
            f"{str(data.get('sha256'))[:12]}... (corrupt or replaced model file)"
        )
    return card_from_json(data, source=str(card_path)), blob, onnx_path
