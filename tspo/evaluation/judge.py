"""The one evaluation loop's core: selections of samples -> one oracle call -> per-(sample, method) outcomes.

``tspo eval`` (:func:`tspo.evaluation.evaluate.evaluate_samples`), the held-out check
(:func:`tspo.evaluation.heldout.heldout_metrics`) and ``TSPOModule.validation_step`` all make their
picks their own way (per-sample features and any rule / a batched top-k / the policy's greedy top-k)
and then hand them here, so a (sample, method, picks) triple is judged the same way everywhere: whole
frames decoded once per sample when the oracle needs pixels, one query per selection
(:func:`tspo.rewards.ask_about`, the one selections -> oracle path, which training's rollout uses
too), a failed query left unscored, an unparsed answer
scored wrong, the fraction of picks inside the target spans (``start <= t < end``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tspo.rewards import ask_about, temporal_reward

# (upper bound in seconds, label); a sample falls in the first bucket whose bound exceeds its duration
DURATION_BUCKETS: tuple[tuple[float, str], ...] = (
    (120.0, "<2min"), (900.0, "2-15min"), (3600.0, "15-60min"), (math.inf, ">60min"),
)


def duration_bucket(duration_s: float) -> str:
    """The label of the :data:`DURATION_BUCKETS` bucket holding ``duration_s`` seconds."""
    return next(label for bound, label in DURATION_BUCKETS if duration_s < bound)


@dataclass
class Outcome:
    """One (sample, method) result. ``correct`` is None when the oracle query failed (``error``
    says why); ``unparsed`` marks an answer with no readable option (``correct`` False, ``raw``
    holds the model's text).

    ``kind`` is the manifest's sample kind, ``"needle"`` or ``"general"`` (the manifest field of that
    name), never a question kind of the synthetic world (``extra["qa_kind"]``: colour, after, ...),
    which :mod:`tspo.evaluation.kind_report` groups by."""

    sample_id: str
    method: str
    kind: str  # the manifest's "kind": needle | general
    bucket: str
    correct: bool | None
    target_fraction: float | None
    seconds: float
    timestamps_s: list[float]
    error: str | None = None
    unparsed: bool = False
    raw: str | None = None
    frames_encoded: int | None = None  # zoom / reflection: distinct frames the selection scored
    oracle_calls: int = 1


def outcome(sample: Any, method: str, answer: Any, timestamps_s: Any, seconds: float, **extra: Any) -> Outcome:
    """One answered selection -> :class:`Outcome` (``timestamps_s`` float[k] seconds of the picks)."""
    times = np.asarray(timestamps_s, dtype=np.float64)
    return Outcome(
        sample_id=sample.id, method=method, kind=sample.kind, bucket=duration_bucket(sample.duration_s),
        correct=None if answer.is_failed else answer.letter == sample.answer,  # unparsed (letter None) -> wrong
        target_fraction=temporal_reward(times, sample.target_spans_s) if sample.target_spans_s else None,
        seconds=seconds, timestamps_s=[round(float(t), 3) for t in times],
        error=answer.error, unparsed=answer.unparsed, raw=answer.raw, **extra)


def judge_selections(oracle: Any, samples: Sequence[Any], picks: Sequence[Mapping[str, Any]],
                     cand_times: Sequence[np.ndarray], frame_size: int,
                     seconds: Sequence[Mapping[str, float]] | None = None) -> list[Outcome]:
    """Ask ``oracle`` about every selection of every sample in ONE call (:func:`tspo.rewards.ask_about`); -> outcomes,
    sample-major in the order of each ``picks[b]`` (keys are method names; their number of picks may differ).
    ``seconds[b][method]``: the selection's wall time (0 when None)."""
    answers = iter(ask_about(oracle, samples, picks, cand_times, frame_size))
    return [outcome(sample, m, next(answers), np.asarray(t, dtype=np.float64)[np.asarray(p, dtype=np.int64)],
                    (seconds[b] if seconds else {}).get(m, 0.0))
            for b, (sample, row, t) in enumerate(zip(samples, picks, cand_times)) for m, p in row.items()]


def answered_accuracy(outcomes: Sequence[Outcome]) -> float | None:
    """Share of answered outcomes (failed ones left out, unparsed ones wrong) that are correct; None if none."""
    answered = [o.correct for o in outcomes if o.correct is not None]
    return float(np.mean(answered)) if answered else None


def metrics_of(outcomes: Sequence[Outcome]) -> dict[str, float | int | None]:
    """One method's outcomes -> ``{"target_fraction", "accuracy", "failures", "unparsed", "n"}``
    (the held-out check's and ``validation_step``'s figures): ``target_fraction`` over needle samples
    only (None without any), ``accuracy`` over answered queries (0.0 when none was answered)."""
    needles = [o.target_fraction for o in outcomes if o.kind == "needle" and o.target_fraction is not None]
    return {"target_fraction": float(np.mean(needles)) if needles else None,
            "accuracy": answered_accuracy(outcomes) or 0.0,
            "failures": sum(o.correct is None for o in outcomes), "unparsed": sum(o.unparsed for o in outcomes),
            "n": len(outcomes)}
