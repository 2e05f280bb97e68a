"""Reflection: answer, and when the oracle is unsure, look elsewhere and answer again.

After ReCrossVLLM's fine-to-coarse reflection (go back when the located segment was wrong) and the
iterative long-video searchers: the oracle answers from the selection; if its confidence (the
largest option probability) is below ``threshold``, the spans just inspected are suppressed and
the selector picks again (zoom: spans around the next-best coarse candidates; single-stage: the
next-best candidates), up to ``rounds`` more times. The most confident answer wins (the first
one on ties), and the number of oracle calls is reported.

:func:`reflection_loop` is the pure control flow over two callables; :func:`select_and_answer`
wires it to a :class:`~tspo.TSPOSelector` and an oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tspo.errors import TSPOError
from tspo.rewards import OracleQuery, in_spans
from tspo.video import read_whole_frames


class ReflectionError(TSPOError, ValueError):
    """Bad reflection settings, or an oracle that reports no confidence."""


@dataclass
class Round:
    """One select-and-answer round: picks (seconds), spans inspected, the answer and its confidence."""

    timestamps_s: np.ndarray  # float64[k]
    spans_s: np.ndarray  # float64[S, 2]
    answer: Any  # OracleAnswer
    confidence: float | None  # None when the query failed


@dataclass
class ReflectionResult:
    """The kept answer, the picks that produced it, and every round (``oracle_calls`` of them)."""

    answer: Any  # OracleAnswer
    timestamps_s: np.ndarray
    rounds: list[Round] = field(default_factory=list)
    frames_encoded: int = 0  # distinct frames the rounds scored: the encoder's work without a cache

    @property
    def oracle_calls(self) -> int:
        return len(self.rounds)


def answer_confidence(answer: Any) -> float | None:
    """The largest option probability of an answer; None for a failed one.

    Raises :class:`ReflectionError` for an answered query without ``option_probs``.
    """
    if answer.is_failed:
        return None
    if not answer.option_probs:
        raise ReflectionError(
            "reflection needs an oracle that reports option probabilities (SimulatedOracle with a confidence, "
            "the HF letter scorer, CLIP zero-shot); this answer has none")
    return float(max(answer.option_probs.values()))


def check_reflection(rounds: int, threshold: float) -> None:
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ReflectionError(f"reflection rounds must be an int >= 0 (0 = no reflection), got {rounds!r}")
    if not 0.0 < float(threshold) <= 1.0:
        raise ReflectionError(f"reflection threshold (confidence to accept an answer) must be in (0, 1], got {threshold!r}")


def reflection_loop(select_fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                    ask_fn: Callable[[np.ndarray], Any], rounds: int = 1, threshold: float = 0.5) -> ReflectionResult:
    """Answer, and re-select with inspected spans suppressed while confidence < ``threshold``.

    ``select_fn(suppress float64[M, 2]) -> (timestamps float64[k], spans inspected float64[S, 2])``;
    ``ask_fn(timestamps) -> OracleAnswer``. At most ``1 + rounds`` oracle calls; a failed query
    ends the loop (it is returned as is, never retried as a new question). ``rounds=0`` is plain
    select-then-answer and needs no confidence from the oracle.
    """
    check_reflection(rounds, threshold)
    suppress = np.zeros((0, 2), dtype=np.float64)
    history: list[Round] = []
    for _ in range(1 + rounds):
        times, spans = select_fn(suppress)
        answer = ask_fn(times)
        # without reflection rounds the confidence is never needed: any oracle will do
        conf = answer_confidence(answer) if rounds else None
        history.append(Round(np.asarray(times, np.float64), np.asarray(spans, np.float64).reshape(-1, 2), answer, conf))
        if conf is None or conf >= threshold:
            break
        suppress = np.concatenate([suppress, history[-1].spans_s])
    answered = [h for h in history if h.confidence is not None]
    best = max(answered, key=lambda h: h.confidence) if answered else history[-1]  # max keeps the first on ties
    return ReflectionResult(answer=best.answer, timestamps_s=best.timestamps_s, rounds=history)


def pick_cells(timestamps_s: np.ndarray, candidate_times_s: np.ndarray) -> np.ndarray:
    """Spans a single-stage selection inspected: each pick's grid cell ``[t - h, t + h)``,
    ``h`` = half the median candidate spacing. float64[k] -> float64[k, 2]."""
    cand = np.asarray(candidate_times_s, dtype=np.float64)
    half = 0.5 * float(np.median(np.diff(cand))) if len(cand) > 1 else 0.5
    t = np.asarray(timestamps_s, dtype=np.float64)
    return np.stack([t - half, t + half], axis=-1)


def select_and_answer(selector: Any, video: Any, question: str, options: list[str] | tuple[str, ...], oracle: Any,
                      num_frames: int | None = None, rounds: int = 1, threshold: float = 0.5,
                      strategy: str = "zoom", method: str | None = None, zoom: Any = None, source: Any = None,
                      features: Any = None, sample_id: str = "query", meta: Mapping[str, Any] | None = None,
                      frame_size: int | None = 448) -> ReflectionResult:
    """Select frames of ``video`` with ``selector``, ask ``oracle``, reflect while unsure.

    ``strategy="zoom"``: zoom selections over ``source`` (default: the selector's on-demand
    :class:`~tspo.selection.zoom.VideoFeatureSource`); ``"single"``: top-k over ``features`` (a
    :class:`~tspo.features.cache.VideoFeatures`; default: the selector's candidates of ``video``).
    ``meta``: what a simulated oracle reads (answer, kind, evidence spans). Frames are decoded only
    for oracles that need pixels (whole frames, short side ``frame_size``). ``num_frames``,
    ``frame_size`` and ``method`` left None are the selector's (its settings; the method: its own,
    ``tspo+shot`` for a filter selector).
    """

    settings = selector.settings.override(num_frames=num_frames, frame_size=frame_size)
    k, frame_size = settings.num_frames, settings.frame_size
    seen: list[np.ndarray] = []
    if strategy == "zoom":
        source = source if source is not None else selector.zoom_source(video)

        def select_fn(suppress: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            res = selector.select_zoom_from_source(source, question, k, method, zoom, suppress, options=list(options))
            seen.append(res.pool_times)
            return res.timestamps, res.spans_s
    elif strategy == "single":
        feats = features if features is not None else selector.features(video)
        times = np.asarray(feats.timestamps_s, dtype=np.float64)
        seen.append(times)

        def select_fn(suppress: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            blocked = in_spans(times, suppress)
            if blocked.all():  # everything inspected already: start over
                blocked[:] = False
            pos, _ = selector.select_from_features(feats.features, question, k, method, list(options), blocked)
            pos = pos.numpy()
            return times[pos], pick_cells(times[pos], times)
    else:
        raise ReflectionError(f"unknown strategy {strategy!r}; choose 'single' or 'zoom'")

    def ask_fn(timestamps: np.ndarray) -> Any:
        frames = read_whole_frames(video, timestamps, frame_size) if getattr(oracle, "needs_frames", False) else None
        query = OracleQuery(sample_id=sample_id, question=question, options=tuple(options), timestamps_s=timestamps,
                            frames=frames, meta=dict(meta or {}))
        return oracle.answer([query])[0]

    result = reflection_loop(select_fn, ask_fn, rounds, threshold)
    result.frames_encoded = len(np.unique(np.round(np.concatenate(seen) * 1000)))
    return result
