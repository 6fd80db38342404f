"""The JSON files of evaluation results (``metrics.json``, ``leaderboard.json``, ``quality.json``).

Strict JSON (no ``Infinity`` or ``NaN`` literals, which many readers refuse): a non-finite float
is written as the string ``"inf"``, ``"-inf"`` or ``"nan"`` (an identical image's PSNR is
``inf``); numpy scalars and arrays become numbers and lists, paths strings. UTF-8, indented, one
newline at the end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["results_json"]


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(obj: Any) -> Any:
    """Non-finite floats → the strings "inf", "-inf", "nan" (strict JSON has no Infinity)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def results_json(obj: Any) -> bytes:
    """``obj`` (dicts, lists, numbers, strings, None, numpy values, paths) as strict UTF-8 JSON."""
    text = json.dumps(
        _finite(obj), ensure_ascii=False, indent=2, allow_nan=False, default=_json_default
    )
    return (text + "\n").encode("utf-8")
