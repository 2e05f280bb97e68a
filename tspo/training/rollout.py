"""One GRPO rollout's glue between tensors and the oracle: queries out, rewards back.

The agent and the sampler work on tensors ``[B, G, k]``; the oracle works on a flat list of
:class:`~tspo.rewards.OracleQuery` (``B * G`` of them, sample-major, one call per batch). These
helpers convert between the two and turn answers into the reward tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tspo.evaluation.judge import ask_about, group_picks
from tspo.manifest import Sample
from tspo.rewards import OracleAnswer, accuracy_reward, compose_reward, soft_accuracy_reward, temporal_reward
from tspo.training.options import ANSWER_REWARDS, TEMPORAL_SPANS


@dataclass
class Rewards:
    """Rewards of a batch of groups, float32 ``[B, G]`` each.

    ``valid`` bool ``[B, G]``: the oracle answered (its query did not fail). ``unparsed`` bool
    ``[B, G]``: answered, but no option letter could be read (valid, scored R_A = 0).
    """

    total: torch.Tensor
    accuracy: torch.Tensor
    temporal: torch.Tensor
    valid: torch.Tensor
    unparsed: torch.Tensor

    @property
    def failures(self) -> int:
        """Failed oracle queries (dropped from the advantages)."""
        return int((~self.valid).sum())

    @property
    def num_unparsed(self) -> int:
        """Answers with no readable option (scored as wrong)."""
        return int(self.unparsed.sum())


def gather_times(timestamps: torch.Tensor, idx: torch.Tensor) -> np.ndarray:
    """Seconds of the selected candidates: timestamps float64[B, T], idx int64[B, G, k] -> float64[B, G, k]."""
    bsz, groups, k = idx.shape
    picked = timestamps.to(idx.device).gather(-1, idx.reshape(bsz, groups * k))
    return picked.reshape(bsz, groups, k).cpu().numpy().astype(np.float64)


def reward_spans(sample: Sample, which: str = "target") -> list[list[float]]:
    """The spans R_T counts picks in (seconds, ``[[start, end), ...]``): the needle's ``target`` material
    (the paper) or the ``evidence`` that answers its question (a needle without evidence spans raises)."""
    if which == "target":
        return sample.target_spans_s
    if which != "evidence":
        raise ValueError(f"temporal_spans must be one of {TEMPORAL_SPANS}, got {which!r}")
    if not sample.evidence_spans_s:
        raise ValueError(f"needle {sample.id!r} has no evidence_spans_s, so R_T cannot count picks in its evidence; "
                         "use model.temporal_spans: target, or a manifest with evidence spans (tspo synth)")
    return sample.evidence_spans_s


def ask_oracle(oracle, samples: Sequence[Sample], idx: torch.Tensor, timestamps: torch.Tensor, frame_size: int,
               w_a: float = 1.0, w_t: float = 1.0, temporal_spans: str = "target",
               answer_reward: str = "hard") -> tuple[np.ndarray, Rewards]:
    """A GRPO group's selections -> rewards (training rollout, zoom step): idx int64[B, G, k] candidate
    positions, timestamps float64[B, T] seconds -> (times float64[B, G, k], :class:`Rewards` [B, G]).
    Asked through the evaluation loop's one path (:func:`tspo.evaluation.judge.ask_about`: whole frames only when
    the oracle needs pixels, all B * G queries in one call)."""
    times = gather_times(timestamps, idx)
    answers = ask_about(oracle, samples, group_picks(idx), list(timestamps.cpu().numpy()), frame_size)
    return times, score_answers(samples, answers, times, w_a, w_t, temporal_spans, answer_reward)


def score_answers(samples: Sequence[Sample], answers: Sequence[OracleAnswer], times: np.ndarray,
                  w_a: float = 1.0, w_t: float = 1.0, temporal_spans: str = "target",
                  answer_reward: str = "hard") -> Rewards:
    """R_A (Eq. 10), R_T (Eq. 11) and their sum per selection.

    ``answer_reward``: ``"hard"`` (paper: R_A = 1 for the right letter, else 0) or ``"soft"`` (beyond
    the paper: the oracle's probability of the right option, :func:`tspo.rewards.soft_accuracy_reward`;
    an unparsed answer still scores 0).

    ``times`` float64[B, G, k]; ``answers`` flat, sample-major (query ``b * G + g`` is selection ``[b, g]``).
    Needle samples score ``w_a R_A + w_t R_T`` (R_T over :func:`reward_spans`), general ones ``w_a R_A + w_t``. A *failed* query
    (``OracleAnswer.is_failed``) is marked invalid (dropped, counted); an *unparsed* answer (no
    option readable) is a wrong answer, R_A = 0, and is flagged in ``unparsed``.
    """
    bsz, groups, _ = times.shape
    if answer_reward not in ANSWER_REWARDS:
        raise ValueError(f"answer_reward must be one of {ANSWER_REWARDS}, got {answer_reward!r}")
    if len(answers) != bsz * groups:
        raise ValueError(f"score_answers: got {len(answers)} answers for {bsz} x {groups} selections")
    valid = np.array([not a.is_failed for a in answers], dtype=bool).reshape(bsz, groups)
    unparsed = np.array([a.unparsed for a in answers], dtype=bool).reshape(bsz, groups)
    r_a = np.zeros((bsz, groups))
    r_t = np.ones((bsz, groups))
    total = np.zeros((bsz, groups))
    for b, sample in enumerate(samples):
        group = answers[b * groups:(b + 1) * groups]
        # letter None (unparsed) scores 0 inside accuracy_reward; failed ones are masked by ``valid``
        r_a[b] = [0.0 if a.is_failed or (answer_reward == "soft" and a.letter is None)
                  else soft_accuracy_reward(a.option_probs, sample.answer) if answer_reward == "soft"
                  else accuracy_reward(a.letter, sample.answer) for a in group]
        temporal = temporal_reward(times[b], reward_spans(sample, temporal_spans)) if sample.kind == "needle" else None
        parts = compose_reward(sample.kind, r_a[b], temporal, w_a=w_a, w_t=w_t)
        r_t[b], total[b] = parts.temporal, parts.total
    as_t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return Rewards(as_t(total), as_t(r_a), as_t(r_t), torch.as_tensor(valid), torch.as_tensor(unparsed))
