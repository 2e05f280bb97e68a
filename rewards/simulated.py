"""A simulated frozen MLLM for synthetic data whose evidence is known (DESIGN §8).

It answers the way a greedy (deterministic) video LLM would if it could read the evidence
exactly when the selection shows it:

- **needle** samples: correct when at least ``min_needle_picks`` picks fall inside the evidence
  spans (``meta["evidence_spans_s"]``; the target spans ``meta["target_spans_s"]`` when a
  sample has no evidence spans);
- **general** samples: correct when every evidence span holds at least ``min_event_picks``
  picks (a general sample with no evidence spans is always answered correctly: nothing specific
  is needed to answer it);
- otherwise a *guess*, by ``guess``: ``"random"`` — uniform among all options (right 1/N of the
  time, like a real model guessing); ``"wrong"`` — uniform among the wrong options (the
  reward is then exactly the coverage indicator); ``"first"`` — always ``"A"``.

Picks are inside a span when ``start <= t < end``. The guess is seeded by SHA-256 of
(``seed``, sample id, the selection's positions — or its timestamps when positions are absent),
so the same (sample, selection) always gets the same answer in every process. Answers carry no
``option_probs`` (a simulated model has no calibrated distribution to report).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .errors import OracleConfigError, OracleInputError
from .oracle import OracleAnswer, OracleQuery, check_queries
from .rewards import _as_spans, span_hits

GUESS_RULES = ("random", "wrong", "first")


class SimulatedOracle:
    """Deterministic oracle driven by ``query.meta`` (answer, kind, evidence/target spans)."""

    needs_frames = False

    def __init__(self, min_needle_picks: int = 1, min_event_picks: int = 1, guess: str = "random", seed: int = 0):
        for name, v in (("min_needle_picks", min_needle_picks), ("min_event_picks", min_event_picks)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise OracleConfigError(f"SimulatedOracle: {name} must be an int >= 1, got {v!r}")
        if guess not in GUESS_RULES:
            raise OracleConfigError(f"SimulatedOracle: guess must be one of {GUESS_RULES}, got {guess!r}")
        self.min_needle_picks = min_needle_picks
        self.min_event_picks = min_event_picks
        self.guess = guess
        self.seed = int(seed)
        self.oracle_id = (
            f"simulated(needle>={min_needle_picks},event>={min_event_picks},guess={guess},seed={self.seed})"
        )

    def __repr__(self) -> str:
        return f"SimulatedOracle({self.oracle_id})"

    def covers_evidence(self, query: OracleQuery) -> bool:
        """Whether the selection shows what the question needs (see the module docstring)."""
        kind = query.meta.get("kind", "general")
        evidence = _as_spans(query.meta.get("evidence_spans_s") or [])
        ts = query.timestamps_s
        inside = span_hits(ts, evidence)                     # [k, S]: pick i lies in span s
        if kind == "needle":
            if evidence.shape[0] == 0:
                target = _as_spans(query.meta.get("target_spans_s") or [])
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
        if self.covers_evidence(query):
            return OracleAnswer(letter=answer, raw=answer)
        letters = query.letters
        if self.guess == "first":
            letter = letters[0]
        else:
            pool = letters if self.guess == "random" else [c for c in letters if c != answer]
            letter = pool[int(self._rng(query).integers(len(pool)))]
        return OracleAnswer(letter=letter, raw=letter)

    def answer(self, queries: list[OracleQuery]) -> list[OracleAnswer]:
        """One answer per query, in order; deterministic per (sample_id, selection)."""
        return [self._answer_one(q) for q in check_queries(queries, False, "SimulatedOracle")]
