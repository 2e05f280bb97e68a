"""TSPO rewards: accuracy R_A, temporal R_T and their composition.

``R_A = 1[predicted option == answer]``; ``R_T = (#selected frames inside target spans) / k``;
general samples score ``r = w_a R_A + w_t · 1``, needle samples ``r = w_a R_A + w_t R_T``.
A pick is inside a span by the one span rule of :mod:`.spans` (``start <= t < end``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tspo.spans import SpanError, in_spans

from .errors import RewardInputError

KINDS = ("general", "needle")


@dataclass(frozen=True)
class RewardParts:
    """The summed reward and its weighted-before-summing components (floats, arrays or tensors).

    ``total = w_a * accuracy + w_t * temporal``; for general samples ``temporal`` is the constant 1.
    """

    total: Any
    accuracy: Any
    temporal: Any


def _check_letter(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) != 1 or not value.isalpha() or not value.isascii():
        raise RewardInputError(f"{name} must be a single option letter 'A'..'Z', got {value!r}")
    return value.upper()


def accuracy_reward(letter: str | None, answer: str) -> float:
    """R_A: 1.0 when ``letter`` equals the ground-truth ``answer`` letter (case-insensitive), else 0.0.

    ``letter=None`` (the model answered but no option could be read: ``OracleAnswer.unparsed``)
    scores 0.0; a *failed* oracle query (``OracleAnswer.is_failed``) must be skipped by the
    caller, not scored.
    """
    answer = _check_letter(answer, "answer")
    if letter is None:
        return 0.0
    return float(_check_letter(letter, "letter") == answer)


def soft_accuracy_reward(option_probs: Any, answer: str) -> float:
    """Soft R_A: the oracle's probability of the correct option, a float in [0, 1].

    Beyond the paper, for ``model.answer_reward: soft``: a right guess of a model that saw nothing
    useful earns ``1 / N`` (its flat probability), not 1, so GRPO stops learning from lucky guesses.
    ``option_probs``: ``{letter: probability}`` as ``OracleAnswer.option_probs`` (the HF letter scorer's
    softmax over the option letters; the SimulatedOracle's ``confidence`` when covered, ``1 / N`` when
    guessing). None (an oracle that exposes no probabilities) raises: use the 0/1 reward there.
    """
    answer = _check_letter(answer, "answer")
    if not option_probs:
        raise RewardInputError("the soft answer reward needs the oracle's option probabilities, and this answer has "
                               "none (SimulatedOracle(confidence=None), an OpenAI server without logprobs); use "
                               "model.answer_reward: hard, or an oracle that reports option_probs")
    probs = {str(k).upper(): float(v) for k, v in option_probs.items()}
    if answer not in probs:
        raise RewardInputError(f"option_probs {sorted(probs)} has no probability for the answer {answer!r}")
    if not all(np.isfinite(v) and 0.0 <= v <= 1.0 + 1e-6 for v in probs.values()):
        raise RewardInputError(f"option_probs must be probabilities in [0, 1], got {option_probs!r}")
    return min(probs[answer], 1.0)


def _as_timestamps(timestamps_s: Any) -> np.ndarray:
    ts = np.asarray(timestamps_s, dtype=np.float64)
    if ts.ndim not in (1, 2):
        raise RewardInputError(f"timestamps_s must be float[k] or float[G, k] seconds, got shape {ts.shape}")
    if ts.shape[-1] == 0:
        raise RewardInputError("timestamps_s is an empty selection (k = 0); select at least one frame")
    if not np.isfinite(ts).all():
        raise RewardInputError("timestamps_s contains NaN or inf")
    return ts


def temporal_reward(
    timestamps_s: Any = None,
    target_spans_s: Any = None,
    *,
    target_mask: Any = None,
    positions: Any = None,
) -> float | np.ndarray:
    """R_T = (#picks inside the target) / k.

    Two ways to say where the target is:

    - ``timestamps_s`` float[k] (or float[G, k] for a whole group) seconds of the picks, and
      ``target_spans_s`` ``[[start_s, end_s], ...]`` (end-exclusive);
    - ``positions`` int[k] (or int[G, k]) candidate positions of the picks, and ``target_mask``
      bool[T] over the candidates.

    Returns a float for one selection, float64[G] for a group.
    """
    by_time = timestamps_s is not None or target_spans_s is not None
    by_mask = target_mask is not None or positions is not None
    if by_time == by_mask:
        raise RewardInputError(
            "temporal_reward needs either (timestamps_s, target_spans_s) or (positions=, target_mask=), not both/neither"
        )
    if by_time:
        if timestamps_s is None or target_spans_s is None:
            raise RewardInputError("temporal_reward needs both timestamps_s and target_spans_s")
        try:
            inside = in_spans(_as_timestamps(timestamps_s), target_spans_s)
        except SpanError as err:  # the reward's contract: every bad input is a RewardInputError
            raise RewardInputError(str(err)) from err
    else:
        if target_mask is None or positions is None:
            raise RewardInputError("temporal_reward needs both positions= and target_mask=")
        mask = np.asarray(target_mask)
        if mask.dtype != np.bool_ or mask.ndim != 1:
            raise RewardInputError(f"target_mask must be bool[T] over candidates, got {mask.dtype}{list(mask.shape)}")
        pos = np.asarray(positions)
        if not np.issubdtype(pos.dtype, np.integer) or pos.ndim not in (1, 2) or pos.shape[-1] == 0:
            raise RewardInputError(f"positions must be a non-empty int[k] or int[G, k], got {pos.dtype}{list(pos.shape)}")
        if pos.min() < 0 or pos.max() >= mask.shape[0]:
            raise RewardInputError(f"positions must lie in 0..{mask.shape[0] - 1} (T = len(target_mask))")
        inside = mask[pos]
    r_t = inside.mean(axis=-1)
    return float(r_t) if np.ndim(r_t) == 0 else r_t


def compose_reward(kind: str, r_a: Any, r_t: Any = None, w_a: float = 1.0, w_t: float = 1.0) -> RewardParts:
    """Combine R_A and R_T by sample kind.

    ``general``: ``total = w_a·R_A + w_t·1`` (``r_t`` is ignored; ``temporal`` is reported as 1);
    ``needle``: ``total = w_a·R_A + w_t·R_T`` (``r_t`` required). ``r_a``/``r_t`` may be floats,
    numpy arrays or torch tensors of one shape (e.g. a group ``[G]``); components come back
    unweighted so the decoupled-advantage option can normalise them separately.
    """
    if kind not in KINDS:
        raise RewardInputError(f"kind must be one of {KINDS}, got {kind!r}")
    for name, w in (("w_a", w_a), ("w_t", w_t)):
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not np.isfinite(w):
            raise RewardInputError(f"{name} must be a finite number, got {w!r}")
    if r_a is None:
        raise RewardInputError("r_a is required (accuracy reward, 0/1)")
    if kind == "general":
        temporal = r_a * 0 + 1.0  # a 1 of r_a's type and shape (float, ndarray or tensor)
    else:
        if r_t is None:
            raise RewardInputError("needle samples need r_t (temporal_reward of the selection)")
        temporal = r_t
    return RewardParts(total=w_a * r_a + w_t * temporal, accuracy=r_a, temporal=temporal)
