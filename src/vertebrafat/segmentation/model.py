"""A loaded segmentation model: its card and an ONNX Runtime session (never torch).

:func:`open_session` turns the verified bytes of an ONNX file (read by
:func:`vertebrafat.io.model.read_model`) into a :class:`SegmentationModel`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
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


def onnxruntime() -> ModuleType:
    """``onnxruntime``, imported with its telemetry off.

    Since 1.2x ONNX Runtime on Linux starts a 1DS telemetry client at import, which writes a
    device id and an event store under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``.
    ``ORT_DISABLE_TELEMETRY`` (read at import) stops it before anything is written, and
    ``disable_telemetry_events`` turns off the events of the Windows builds. Every import of
    onnxruntime in vertebrafat goes through here.
    """
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import onnxruntime as ort

    ort.disable_telemetry_events()
    return ort


def open_session(card: ModelCard, onnx: bytes, *, source: str = "", threads: int = 2) -> (
    SegmentationModel
):
    """An ONNX Runtime CPU session of ``threads`` intra-op threads on the model bytes ``onnx``."""
    ort = onnxruntime()

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # no busy-waiting between operators and after a run: a spinning thread takes a core from
    # the numpy work that follows, from another cohort worker, or from anyone else's job on a
    # shared machine (measured on 2 cores at load 3-4: 20 slices in 0.41-0.67 s without
    # spinning, 0.77-0.93 s with it, whatever the batch size; the same logits bit for bit)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    return SegmentationModel(card=card, session=session, source=source)
