"""JSON-ready values: the one conversion every ``--json`` output and report goes through."""

from __future__ import annotations

import math

import numpy as np


def json_ready(value: object) -> object:
    """``value`` with NaN/inf as ``None``, numpy floats as ``float``, tuples as lists (recursive).

    Examples
    --------
    >>> json_ready({"bias": float("nan"), "limits": (np.float64(-1.5), 2.0)})
    {'bias': None, 'limits': [-1.5, 2.0]}
    """
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value
