"""The one span rule, and spans around chosen moments (seconds throughout).

A time ``t`` lies in span ``[start, end)`` when ``start <= t < end``: end-exclusive, so back-to-back
spans never count one pick twice and a pick at a clip's end belongs to the next. R_T, the simulated
oracle's evidence coverage, zoom's span pools, reflection's suppression and the datasets' target
masks all ask these functions (a core module: selection, features and rewards sit above it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tspo.errors import TSPOError


class SpanError(TSPOError, ValueError):
    """Spans that are not a list of finite ``[start_s, end_s]`` pairs with start <= end."""


def as_spans(target_spans_s: Any) -> np.ndarray:
    """Validate spans -> float64[S, 2] (S may be 0)."""
    try:
        spans = np.asarray(target_spans_s, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SpanError(f"target_spans_s must be a list of [start_s, end_s] pairs: {exc}") from exc
    if spans.size == 0:
        return spans.reshape(0, 2)
    if spans.ndim != 2 or spans.shape[1] != 2:
        raise SpanError(
            f"target_spans_s must have shape [S, 2] ([[start_s, end_s], ...]), got shape {spans.shape}"
        )
    if not np.isfinite(spans).all():
        raise SpanError("target_spans_s contains NaN or inf; give finite seconds")
    if (spans[:, 1] < spans[:, 0]).any():
        raise SpanError(f"target_spans_s has a span with end < start: {spans.tolist()}; swap them")
    return spans


def span_hits(timestamps_s: Any, spans_s: Any) -> np.ndarray:
    """The one span rule: a time t lies in span [start, end) when ``start <= t < end`` (end-exclusive,
    so back-to-back spans never share a pick). float[..., k] seconds, [[start_s, end_s], ...] ->
    bool[..., k, S] (pick i in span s), broadcast picks x spans."""
    ts = np.asarray(timestamps_s, dtype=np.float64)
    spans = as_spans(spans_s)
    return (ts[..., None] >= spans[:, 0]) & (ts[..., None] < spans[:, 1])


def in_spans(timestamps_s: Any, spans_s: Any) -> np.ndarray:
    """bool[..., k]: whether each pick lies in any span (:func:`span_hits`)."""
    return span_hits(timestamps_s, spans_s).any(axis=-1)


def spans_around(centres_s: Any, width_s: float, duration_s: float) -> np.ndarray:
    """Spans ``[t - w/2, t + w/2)`` around each centre, clipped to ``[0, duration_s]``:
    float[...] seconds -> float64[..., 2]."""
    t = np.asarray(centres_s, dtype=np.float64)
    return np.stack([np.clip(t - width_s / 2, 0.0, duration_s), np.clip(t + width_s / 2, 0.0, duration_s)], axis=-1)
