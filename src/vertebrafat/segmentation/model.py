"""A loaded segmentation model: its card and an ONNX Runtime session (never torch).

:func:`open_session` turns the verified bytes of an ONNX file (read by
:func:`vertebrafat.io.model.read_model`) into a :class:`SegmentationModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from vertebrafat.core.model_card import ModelCard


class Session(Protocol):
    """The part of ``onnxruntime.InferenceSession`` that inference uses."""

    def run(self, output_names: Any, input_feed: dict[str, Any]) -> list[Any]: ...


@dataclass(frozen=True)
class SegmentationModel:
    """A loaded model: its card and an inference session (input ``x``, output logits)."""

    card: ModelCard
    session: Session
    source: str = ""




def open_session(card: ModelCard, onnx: bytes, *, source: str = "", threads: int = 2) -> (
    SegmentationModel
):
    """An ONNX Runtime CPU session of ``threads`` intra-op threads on the model bytes ``onnx``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    return SegmentationModel(card=card, session=session, source=source)
