"""The oracle protocol: a frozen "video LLM" that answers multiple-choice questions from k frames.

``Oracle.answer(queries)`` answers a whole GRPO group in one call. Every answer is one of:

- **answered** (``letter`` set): scored, R_A = 1[letter == answer];
- **unparsed** (``letter`` None, ``error`` None): the model answered but no option letter could
  be read from its text. A real wrong answer: R_A = 0, counted separately as "unparsed";
- **failed** (``error`` set: an exception, an HTTP failure, malformed server JSON): there is no
  answer at all. Training and evaluation drop and count it; it never becomes a wrong answer.

Malformed queries raise :class:`OracleInputError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tspo.plugins._clip import SelectedClip, make_clip

from .errors import OracleInputError
from .parsing import LETTERS

ANSWER_INSTRUCTION = "Answer with the option's letter from the given choices directly."
# Part of the HF / OpenAI oracle ids (so of every OracleCache key): bump it when the prompt layout
# changes, or cached answers to the old prompt would be served for the new one.
PROMPT_VERSION = 2


@dataclass(frozen=True, eq=False)
class OracleQuery:
    """One question about one selection of k frames.

    ``options``: option texts without letters (2..26; letters A.. are implied by order).
    ``timestamps_s``: float64[k] seconds of the picks, ascending (with the frame size, the cache
    key). ``frames``: uint8[k, H, W, 3] or None (a list of equally shaped frames is stacked).
    ``positions``: int64[k] candidate positions on the caller's grid (informational: their meaning
    depends on fps / max_candidates, so they never key the cache). ``meta``: ``answer``, ``kind``, ``evidence_spans_s``,
    ``target_spans_s``, ``duration_s`` — read by the simulated oracle, ignored by real ones.
    """

    sample_id: str
    question: str
    options: tuple[str, ...]
    timestamps_s: np.ndarray
    frames: np.ndarray | None = None
    positions: np.ndarray | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"OracleQuery(sample_id={self.sample_id!r})"
        if not isinstance(self.sample_id, str) or not self.sample_id:
            raise OracleInputError(f"OracleQuery.sample_id must be a non-empty str, got {self.sample_id!r}")
        if not isinstance(self.question, str):
            raise OracleInputError(f"{where}: question must be a str")
        if isinstance(self.options, str) or not isinstance(self.options, Sequence):
            raise OracleInputError(f"{where}: options must be a sequence of option texts, got {type(self.options).__name__}")
        options = tuple(str(o) for o in self.options)
        if not 2 <= len(options) <= 26:
            raise OracleInputError(f"{where}: needs 2..26 options (letters A-Z), got {len(options)}")
        object.__setattr__(self, "options", options)

        ts = np.asarray(self.timestamps_s, dtype=np.float64)
        if ts.ndim != 1 or ts.size == 0:
            raise OracleInputError(f"{where}: empty or non-1-D selection (timestamps_s shape {ts.shape}); select >= 1 frame")
        if not np.isfinite(ts).all() or (np.diff(ts) < 0).any():
            raise OracleInputError(f"{where}: timestamps_s must be finite seconds in ascending order")
        object.__setattr__(self, "timestamps_s", ts)
        k = ts.size

        if self.frames is not None:
            object.__setattr__(self, "frames", _stack_frames(self.frames, k, where))
        if self.positions is not None:
            pos = np.asarray(self.positions)
            if not np.issubdtype(pos.dtype, np.integer) or pos.shape != (k,) or (pos < 0).any():
                raise OracleInputError(f"{where}: positions must be non-negative int[{k}] (one per timestamp)")
            object.__setattr__(self, "positions", pos.astype(np.int64))
        if not isinstance(self.meta, Mapping):
            raise OracleInputError(f"{where}: meta must be a mapping")
        answer = self.meta.get("answer")
        if answer is not None and (not isinstance(answer, str) or answer.upper() not in LETTERS[: len(options)]):
            raise OracleInputError(
                f"{where}: meta['answer']={answer!r} is not one of the option letters {LETTERS[: len(options)]}"
            )

    @classmethod
    def for_sample(cls, sample: Any, timestamps_s: np.ndarray, positions: np.ndarray | None = None,
                   frames: np.ndarray | None = None) -> OracleQuery:
        """The one query builder: a manifest sample (``id``, ``question``, ``options``,
        ``oracle_meta()``) asked about the picks at ``timestamps_s`` float64[k] seconds (candidate
        ``positions`` int64[k], whole ``frames`` uint8[k, H, W, 3] for oracles that need pixels)."""
        return cls(sample_id=sample.id, question=sample.question, options=tuple(sample.options),
                   timestamps_s=timestamps_s, frames=frames, positions=positions, meta=sample.oracle_meta())

    @property
    def letters(self) -> str:
        """Option letters of this query, e.g. ``"ABCD"``."""
        return LETTERS[: len(self.options)]

    @property
    def num_frames(self) -> int:
        return int(self.timestamps_s.size)


def _stack_frames(frames: Any, k: int, where: str) -> np.ndarray:
    if isinstance(frames, np.ndarray):
        arr = frames
    else:
        shapes = {tuple(np.shape(f)) for f in frames}
        if len(shapes) > 1:
            raise OracleInputError(f"{where}: frames have mixed shapes {sorted(shapes)}; resize them to one H x W first")
        arr = np.stack([np.asarray(f) for f in frames]) if len(frames) else np.zeros((0,), np.uint8)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise OracleInputError(f"{where}: frames must be uint8[k, H, W, 3], got {arr.dtype}{list(arr.shape)}")
    if arr.shape[0] != k:
        raise OracleInputError(f"{where}: {arr.shape[0]} frames but {k} timestamps; give one timestamp per frame")
    return arr


@dataclass
class OracleAnswer:
    """The oracle's answer to one query (see the module docstring for the three outcomes).

    ``letter``: chosen option letter, or None when no option could be read (``unparsed``) or the
    query failed. ``option_probs``: {letter: probability} when the model exposes them.
    ``error``: why the query failed (None when it did not). ``raw``: the model's raw text, if any.
    Build a failed answer with :meth:`failed`; test for one with :attr:`is_failed`.
    """

    letter: str | None
    option_probs: dict[str, float] | None = None
    error: str | None = None
    raw: str | None = None

    @property
    def is_failed(self) -> bool:
        """The query failed (``error`` set): no answer exists; drop and count it, never score it."""
        return self.error is not None

    @property
    def unparsed(self) -> bool:
        """The model answered but no option letter could be read: a wrong answer (R_A = 0)."""
        return self.error is None and self.letter is None

    @property
    def ok(self) -> bool:
        """The query was answered (not failed), so it is scored; an unparsed answer is ok and wrong."""
        return self.error is None

    @classmethod
    def failed(cls, error: str, raw: str | None = None) -> OracleAnswer:
        """A failed query: ``error`` says why (exception, HTTP failure, malformed server response)."""
        if not isinstance(error, str) or not error:
            raise OracleInputError(f"OracleAnswer.failed needs a non-empty error message, got {error!r}")
        return cls(letter=None, option_probs=None, error=error, raw=raw)

    def to_dict(self) -> dict[str, Any]:
        return {"letter": self.letter, "option_probs": self.option_probs, "error": self.error, "raw": self.raw}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OracleAnswer:
        return cls(letter=d.get("letter"), option_probs=d.get("option_probs"), error=d.get("error"), raw=d.get("raw"))


@runtime_checkable
class Oracle(Protocol):
    """Anything that answers a batch of queries. ``needs_frames``: whether queries must carry pixels."""

    oracle_id: str
    needs_frames: bool

    def answer(self, queries: list[OracleQuery]) -> list[OracleAnswer]: ...


def check_queries(queries: Any, needs_frames: bool, who: str) -> list[OracleQuery]:
    """Validate a batch: a list of :class:`OracleQuery`, carrying frames when the oracle needs them."""
    if isinstance(queries, OracleQuery) or not isinstance(queries, Sequence):
        raise OracleInputError(f"{who}.answer expects a list of OracleQuery (one GRPO group), got {type(queries).__name__}")
    for i, q in enumerate(queries):
        if not isinstance(q, OracleQuery):
            raise OracleInputError(f"{who}.answer: item {i} is {type(q).__name__}, not OracleQuery")
        if needs_frames and q.frames is None:
            raise OracleInputError(
                f"{who} needs pixels: query {i} (sample_id={q.sample_id!r}) has frames=None; "
                "build queries with frames (e.g. select_frames(..., return_frames=True))"
            )
    return list(queries)


def answer_suffix(query: OracleQuery) -> str:
    """What an oracle adds after the question: the lettered options and the answer-format
    instruction. Everything else of the prompt (frame times, video layout) is the model family's
    builder in :mod:`tspo.plugins`, the same one that serves the trained selector."""
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(query.letters, query.options))
    return f"\nOptions:\n{options}\n{ANSWER_INSTRUCTION}"


def question_text(query: OracleQuery) -> str:
    """The text an oracle asks about the frames: the question, then :func:`answer_suffix`."""
    return query.question + answer_suffix(query)


def query_clip(query: OracleQuery) -> SelectedClip:
    """The query's frames and times as the plug-ins' :class:`~tspo.plugins._clip.SelectedClip`."""
    if query.frames is None:
        raise OracleInputError(f"query {query.sample_id!r} has no frames; this oracle needs pixels")
    positions = query.positions if query.positions is not None else np.arange(query.num_frames)
    return make_clip(query.frames, query.timestamps_s, positions)
