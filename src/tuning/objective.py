"""An objective metric: one logged metric (``test/fid``) or the min, max or mean of several.

``min(test/precision, test/recall)`` scores a run by its weaker side: it reaches 0.75 only when both do, so a
search cannot buy precision with recall (a collapsed generator has high precision and low recall).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable

REDUCERS: dict[str, Callable[[list[float]], float]] = {"min": min, "max": max, "mean": statistics.fmean}
_CALL = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")


def metric_terms(metric: str) -> tuple[str | None, tuple[str, ...]]:
    """The reducer and the logged metrics of ``metric``: ``(None, ("val/fid",))`` or ``("min", (a, b))``.

    Raises:
        ValueError: An unknown reducer or an empty argument list (the message names the allowed ones).
    """
    call = _CALL.match(metric)
    if call is None:
        return None, (metric.strip(),)
    reducer, inner = call.groups()
    names = tuple(name.strip() for name in inner.split(",") if name.strip())
    if reducer not in REDUCERS or not names:
        raise ValueError(
            f"metric {metric!r}: use one logged metric or {', '.join(REDUCERS)} of several, "
            "e.g. min(test/precision, test/recall)"
        )
    return reducer, names


def combine(metric: str, lookup: Callable[[str], float | None]) -> float | None:
    """The value of ``metric``, each logged metric read with ``lookup``; ``None`` when one is missing."""
    reducer, names = metric_terms(metric)
    values = [lookup(name) for name in names]
    if any(value is None for value in values):
        return None
    floats = [float(value) for value in values]
    return floats[0] if reducer is None else REDUCERS[reducer](floats)
