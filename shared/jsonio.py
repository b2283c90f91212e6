"""Strict JSON for reports: undefined numbers (NaN, inf) are written as ``null``, never as bare ``NaN``.

Python's ``json`` writes ``NaN``/``Infinity`` by default, which is not JSON (other parsers refuse it).
"""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (in nested dicts, lists and tuples) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalars
        return finite_or_none(obj.item())
    return obj


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``obj`` with non-finite numbers as null; raises if any other bare NaN would remain."""
    import json

    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)
