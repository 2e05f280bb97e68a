"""A simulated frozen MLLM for synthetic data whose evidence is known.

It answers the way a greedy (deterministic) video LLM would if it could read the evidence
exactly when the selection shows it:

- **needle** samples: correct when at least ``min_needle_picks`` picks fall inside the evidence
  spans (``meta["evidence_spans_s"]``; the target spans ``meta["target_spans_s"]`` when a
  sample has no evidence spans);
- **general** samples: correct when every evidence span holds at least ``min_event_picks``
  picks (a general sample with no evidence spans is always answered correctly: nothing specific
  is needed to answer it);
- samples with a per-kind ``meta["coverage"]`` rule (synthetic question kinds, see
  ``tspo.data_synth.events.COVERAGE_RULES``) and ``meta["evidence_groups_s"]`` (one list of spans
  per key event): ``{"rule": "any", "min_picks": m}`` — at least ``m`` picks inside the evidence
  (e.g. colour/text/shape/after: one; motion: two); ``{"rule": "all", "min_picks": m}`` — at least
  ``m`` picks inside every group (order, count: every key event seen). This rule replaces the two
  above for such samples. A rule with ``"min_px": p`` (the text kind: the word must be legible)
  also needs the frames to be at least ``p`` px on their short side: ``meta["frame_px"]`` when
  given (e.g. a clip selection's smaller frames, in the world's pixels), else the short side of
  ``query.frames``, else full size (always legible);
- otherwise a *guess*, by ``guess``: ``"random"`` — uniform among all options (right 1/N of the
  time, like a real model guessing); ``"wrong"`` — uniform among the wrong options (the
  reward is then exactly the coverage indicator); ``"first"`` — always ``"A"``.

Picks are inside a span when ``start <= t < end``. The guess is seeded by SHA-256 of
(``seed``, sample id, the selection's positions — or its timestamps when positions are absent),
so the same (sample, selection) always gets the same answer in every process.

Confidence model (``option_probs``, what reflection reads): when the selection covers the
evidence the model is sure, ``confidence`` on the right letter and the rest shared evenly; when it
guesses it is flat, ``1 / N`` on every option (a calibrated model that saw nothing useful).
``confidence=None`` reports no ``option_probs``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from tspo.spans import as_spans, span_hits

from .errors import OracleConfigError, OracleInputError
from .oracle import OracleAnswer, OracleQuery, check_queries

GUESS_RULES = ("random", "wrong", "first")


COVERAGE_MODES = ("any", "all")


def group_hits(timestamps_s: np.ndarray, groups: list) -> np.ndarray:
    """int64[G]: how many picks (seconds, ``[k]``) fall inside each evidence group (a list of spans)."""
    spans = [span for g in groups for span in g]
    owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])            # [S] group of each span
    inside = span_hits(timestamps_s, spans if spans else np.zeros((0, 2)))           # [k, S]
    member = np.zeros((len(spans), len(groups)), dtype=np.int64)
    member[np.arange(len(spans)), owner] = 1                                          # [S, G]
    return ((inside.astype(np.int64) @ member) > 0).sum(axis=0)


def covers_groups(timestamps_s: np.ndarray, groups: list | None, coverage: dict, sample_id: str = "?",
                  frame_px: float | None = None) -> bool:
    """Whether picks at ``timestamps_s`` satisfy a per-kind coverage rule (module docstring);
    ``frame_px``: short side (px) of the frames shown, None = full size."""
    mode, need = coverage.get("rule"), coverage.get("min_picks", 1)
    min_px = coverage.get("min_px")
    if min_px is not None and frame_px is not None and frame_px < min_px:
        return False   # the picks may be in the evidence, but what the question asks is not legible
    if mode not in COVERAGE_MODES or not isinstance(need, int) or need < 1:
        raise OracleInputError(f"SimulatedOracle: sample {sample_id!r} has coverage {coverage!r}; expected "
                               f"{{'rule': one of {COVERAGE_MODES}, 'min_picks': int >= 1}}")
    if not groups:
        raise OracleInputError(f"SimulatedOracle: sample {sample_id!r} has a coverage rule but no "
                               "evidence_groups_s; write one list of spans per key event into the manifest")
    hits = group_hits(timestamps_s, groups)
    if mode == "all":
        return bool((hits >= need).all())
    return int(span_hits(timestamps_s, [span for g in groups for span in g]).any(axis=1).sum()) >= need


class SimulatedOracle:
    """Deterministic oracle driven by ``query.meta`` (answer, kind, evidence/target spans)."""

    needs_frames = False

    def __init__(self, min_needle_picks: int = 1, min_event_picks: int = 1, guess: str = "random", seed: int = 0,
                 confidence: float | None = 0.9):
        for name, v in (("min_needle_picks", min_needle_picks), ("min_event_picks", min_event_picks)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise OracleConfigError(f"SimulatedOracle: {name} must be an int >= 1, got {v!r}")
        if guess not in GUESS_RULES:
            raise OracleConfigError(f"SimulatedOracle: guess must be one of {GUESS_RULES}, got {guess!r}")
        if confidence is not None and (isinstance(confidence, bool) or not 0.5 < float(confidence) <= 1.0):
            raise OracleConfigError(
                f"SimulatedOracle: confidence (probability of the answer when the evidence is covered) must be in "
                f"(0.5, 1] or None, got {confidence!r}")
        self.min_needle_picks = min_needle_picks
        self.min_event_picks = min_event_picks
        self.guess = guess
        self.seed = int(seed)
        self.confidence = None if confidence is None else float(confidence)
        self.oracle_id = (
            f"simulated(needle>={min_needle_picks},event>={min_event_picks},guess={guess},seed={self.seed},"
            f"confidence={self.confidence})"
        )

    def __repr__(self) -> str:
        return f"SimulatedOracle({self.oracle_id})"

    def covers_evidence(self, query: OracleQuery) -> bool:
        """Whether the selection shows what the question needs (see the module docstring)."""
        if query.meta.get("coverage") is not None:
            frame_px = query.meta.get("frame_px")
            if frame_px is None and query.frames is not None:
                frame_px = min(query.frames.shape[1:3])
            return covers_groups(query.timestamps_s, query.meta.get("evidence_groups_s"), query.meta["coverage"],
                                 query.sample_id, frame_px)
        kind = query.meta.get("kind", "general")
        evidence = as_spans(query.meta.get("evidence_spans_s") or [])
        ts = query.timestamps_s
        inside = span_hits(ts, evidence)                     # [k, S]: pick i lies in span s
        if kind == "needle":
            if evidence.shape[0] == 0:
                target = as_spans(query.meta.get("target_spans_s") or [])
                if target.shape[0] == 0:
                    raise OracleInputError(
                        f"SimulatedOracle: needle sample {query.sample_id!r} has neither evidence_spans_s "
                        "nor target_spans_s in meta; the simulated oracle cannot decide coverage"
                    )
                inside = span_hits(ts, target)
            return int(inside.any(axis=1).sum()) >= self.min_needle_picks
        if kind == "general":
            return bool((inside.sum(axis=0) >= self.min_event_picks).all())
        raise OracleInputError(f"SimulatedOracle: meta['kind'] must be 'general' or 'needle', got {kind!r}")

    def _rng(self, query: OracleQuery) -> np.random.Generator:
        picks = query.positions if query.positions is not None else np.round(query.timestamps_s, 6)
        key = f"{self.seed}|{query.sample_id}|{','.join(str(p) for p in np.asarray(picks).tolist())}"
        digest = hashlib.sha256(key.encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def _answer_one(self, query: OracleQuery) -> OracleAnswer:
        answer: Any = query.meta.get("answer")
        if answer is None:
            raise OracleInputError(
                f"SimulatedOracle: query {query.sample_id!r} has no meta['answer']; build queries from manifest samples"
            )
        answer = answer.upper()
        letters = query.letters
        if self.covers_evidence(query):
            return OracleAnswer(letter=answer, raw=answer, option_probs=self._probs(letters, answer))
        if self.guess == "first":
            letter = letters[0]
        else:
            pool = letters if self.guess == "random" else [c for c in letters if c != answer]
            letter = pool[int(self._rng(query).integers(len(pool)))]
        return OracleAnswer(letter=letter, raw=letter, option_probs=self._probs(letters, None))

    def _probs(self, letters: str, sure_of: str | None) -> dict[str, float] | None:
        """Option probabilities: ``confidence`` on ``sure_of`` (rest even), or flat when guessing."""
        if self.confidence is None:
            return None
        if sure_of is None:
            return {c: 1.0 / len(letters) for c in letters}
        rest = (1.0 - self.confidence) / (len(letters) - 1)
        return {c: self.confidence if c == sure_of else rest for c in letters}

    def answer(self, queries: list[OracleQuery]) -> list[OracleAnswer]:
        """One answer per query, in order; deterministic per (sample_id, selection)."""
        return [self._answer_one(q) for q in check_queries(queries, False, "SimulatedOracle")]
