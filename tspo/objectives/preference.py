"""Preference pairs from logged oracle answers and the DPO objective on them (TPO-style, for the sampler).

:func:`pairs_from_log` turns the logged selections of each question (an answer log,
:mod:`tspo.evaluation.answer_log`) into preference pairs: for two selections of the same question, the one with
the higher reward (``w_a R_A + w_t R_T`` for needles, ``w_a R_A + w_t`` otherwise) is preferred; ties
(and margins up to ``min_margin``) are dropped. :func:`dpo_loss` trains on the pairs against a frozen
reference agent.

Selections are matched to the training candidates by their timestamps (within half a
millisecond, the OracleCache's resolution), never by positions, so a log made on another
candidate grid is refused record by record (counted as ``off_grid``) instead of misread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tspo.errors import TSPOError
from tspo.objectives.grpo import ObjectiveInputError, picks_in_target
from tspo.rewards import accuracy_reward

# OracleCache keys hold integer milliseconds; a logged pick matches a candidate within half of that.
MATCH_TOL_S = 5e-4


class PreferenceError(TSPOError, ValueError):
    """Preference pairs that cannot be formed: bad reward shapes or margins, or no usable logged selection."""


# -- pairs ----------------------------------------------------------------------------------------
def group_pairs(rewards: torch.Tensor, valid: torch.Tensor | None = None,
                min_margin: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every ordered pair of one group whose rewards differ by more than ``min_margin``.

    Args:
        rewards: float[Q, M], Q groups (questions) of M members; padding marked by ``valid``.
        valid: bool[Q, M] (None = all valid).
        min_margin: >= 0; pairs with ``r_chosen - r_rejected <= min_margin`` (ties) are dropped.
    Returns:
        ``(q, chosen, rejected)`` int64[P] each: group and member indices, ``r[q, chosen] > r[q, rejected]``.
    """
    if rewards.dim() != 2:
        raise PreferenceError(f"group_pairs: rewards must be [Q, M], got {tuple(rewards.shape)}")
    if min_margin < 0:
        raise PreferenceError(f"group_pairs: min_margin must be >= 0, got {min_margin}")
    valid = torch.ones_like(rewards, dtype=torch.bool) if valid is None else valid.to(torch.bool)
    if valid.shape != rewards.shape:
        raise PreferenceError(f"group_pairs: valid {tuple(valid.shape)} must match rewards {tuple(rewards.shape)}")
    diff = rewards.unsqueeze(-1) - rewards.unsqueeze(-2)                       # [Q, M, M]: r_i - r_j
    keep = (diff > min_margin) & valid.unsqueeze(-1) & valid.unsqueeze(-2)
    q, chosen, rejected = keep.nonzero(as_tuple=True)
    return q, chosen, rejected


@dataclass
class PreferencePairs:
    """Preference pairs over the rows of a dataset: ``chosen`` earned more reward than ``rejected``.

    ``index`` int64[P] dataset row (question); ``chosen``/``rejected`` int64[P, k] candidate
    positions (ascending); ``margin`` float32[P] reward difference (> 0). ``stats`` counts what
    was read and what was dropped, and why.
    """

    index: torch.Tensor
    chosen: torch.Tensor
    rejected: torch.Tensor
    margin: torch.Tensor
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @classmethod
    def empty(cls, k: int) -> PreferencePairs:
        z = torch.zeros(0, k, dtype=torch.int64)
        return cls(torch.zeros(0, dtype=torch.int64), z, z.clone(), torch.zeros(0))

    def extend(self, other: PreferencePairs) -> PreferencePairs:
        """Both sets of pairs in one (``stats`` summed)."""
        stats = {key: self.stats.get(key, 0) + other.stats.get(key, 0) for key in {*self.stats, *other.stats}}
        return PreferencePairs(torch.cat([self.index, other.index]), torch.cat([self.chosen, other.chosen]),
                               torch.cat([self.rejected, other.rejected]), torch.cat([self.margin, other.margin]),
                               stats)


def pairs_from_groups(index: torch.Tensor, idx: torch.Tensor, rewards: torch.Tensor, valid: torch.Tensor,
                      min_margin: float = 0.0) -> PreferencePairs:
    """Pairs inside the groups of one GRPO rollout (for replay).

    ``index`` int64[B] dataset rows, ``idx`` int64[B, G, k] selections, ``rewards`` float[B, G]
    totals, ``valid`` bool[B, G] (failed answers are never paired).
    """
    q, i, j = group_pairs(rewards.float(), valid, min_margin)
    return PreferencePairs(index[q].long().cpu(), idx[q, i].cpu(), idx[q, j].cpu(),
                           (rewards[q, i] - rewards[q, j]).float().cpu(),
                           {"pairs": int(q.numel())})


def pairs_from_log(records: Sequence[dict[str, Any]], dataset: Any, num_frames: int, w_accuracy: float = 1.0,
                   w_temporal: float = 1.0, min_margin: float = 0.0) -> PreferencePairs:
    """Preference pairs from logged answers about the samples of ``dataset`` (a ``FeatureDataset``).

    Records are dropped and counted in ``stats`` when the query failed (``failed``), names a
    sample not in ``dataset`` (``unknown_sample``), has another number of frames than
    ``num_frames`` (``other_k``), or picks a time that is not one of the sample's candidates
    (``off_grid``); a selection logged twice counts once (``duplicates``). Each remaining
    selection is scored like a training rollout (an unparsed answer is wrong, R_A = 0) and every
    two selections of one question whose rewards differ by more than ``min_margin`` form a pair.
    """
    rows = {s.id: i for i, s in enumerate(dataset.samples)}
    stats = {"records": len(records), "failed": 0, "unknown_sample": 0, "other_k": 0, "off_grid": 0,
             "duplicates": 0}
    kept = []
    for r in records:
        if r.get("error") is not None:
            stats["failed"] += 1
        elif r["sample_id"] not in rows:
            stats["unknown_sample"] += 1
        elif len(r["timestamps_s"]) != num_frames:
            stats["other_k"] += 1
        else:
            kept.append(r)
    if not kept:
        raise PreferenceError(f"no usable answers in the log: {stats}; the log must hold answered selections of "
                             f"{num_frames} frames about the training samples")
    sample_row = torch.tensor([rows[r["sample_id"]] for r in kept])                             # [N]
    times = torch.tensor([r["timestamps_s"] for r in kept], dtype=torch.float64)               # [N, k]
    used, row_of = sample_row.unique(return_inverse=True)                                      # [S], [N]
    items = [dataset[int(i)] for i in used]
    num_t = max(int(it["timestamps"].shape[0]) for it in items)
    cand = torch.full((len(items), num_t), float("inf"), dtype=torch.float64)                 # [S, T] padded
    mask = torch.zeros(len(items), num_t, dtype=torch.bool)
    for s, it in enumerate(items):
        n = int(it["timestamps"].shape[0])
        cand[s, :n], mask[s, :n] = it["timestamps"], it["target_mask"]
    # Nearest candidate of each pick: the insertion point or the one before it.
    cand_rows = cand[row_of]                                                                   # [N, T]
    hi = torch.searchsorted(cand_rows, times.sort(-1).values).clamp(max=num_t - 1)
    lo = (hi - 1).clamp(min=0)
    t_sorted = times.sort(-1).values
    d_hi, d_lo = (cand_rows.gather(-1, hi) - t_sorted).abs(), (cand_rows.gather(-1, lo) - t_sorted).abs()
    pos = torch.where(d_lo < d_hi, lo, hi)                                                     # [N, k]
    on_grid = (torch.minimum(d_lo, d_hi) <= MATCH_TOL_S).all(-1)
    on_grid &= (pos.diff(dim=-1) > 0).all(-1)        # k distinct candidates, as a policy draws them
    stats["off_grid"] = int((~on_grid).sum())
    # One entry per distinct (sample, selection).
    key = torch.cat([sample_row[:, None], pos], dim=-1)[on_grid]
    keep_ids = on_grid.nonzero().squeeze(-1)
    uniq, first = _first_occurrence(key)
    stats["duplicates"] = int(key.shape[0] - uniq.shape[0])
    ids = keep_ids[first]                                                                      # [U] into kept
    if ids.numel() == 0:
        raise PreferenceError(f"no logged selection lies on the training candidate grid: {stats}; log with the same "
                             "fps / max_candidates as training")
    pos, row_of, sample_row = pos[ids], row_of[ids], sample_row[ids]
    # Rewards as in training: R_A from the letter, R_T from the target mask; general samples get R_T = 1.
    r_a = torch.tensor([accuracy_reward(kept[int(i)]["letter"], dataset.samples[int(s)].answer)
                        for i, s in zip(ids, sample_row)], dtype=torch.float32)
    needle = torch.tensor([dataset.samples[int(i)].kind == "needle" for i in sample_row])
    r_t = torch.where(needle, picks_in_target(mask[row_of], pos.unsqueeze(1)), torch.ones(len(ids)))
    total = w_accuracy * r_a + w_temporal * r_t
    # Group by question into a padded [Q, M] block, then compare members within each block.
    order = torch.argsort(sample_row, stable=True)
    groups, counts = sample_row[order].unique_consecutive(return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(order)) - starts.repeat_interleave(counts)
    gid = torch.arange(len(groups)).repeat_interleave(counts)
    member = torch.full((len(groups), int(counts.max())), -1, dtype=torch.int64)
    member[gid, slot] = order
    valid = member >= 0
    r_pad = torch.where(valid, total[member.clamp(min=0)], torch.zeros(()))
    q, i, j = group_pairs(r_pad, valid, min_margin)
    a, b = member[q, i], member[q, j]
    stats.update(selections=int(len(ids)), questions=int(len(groups)), pairs=int(q.numel()),
                 questions_with_pairs=int(q.unique().numel()))
    return PreferencePairs(sample_row[a], pos[a], pos[b], (total[a] - total[b]).float(), stats)


def _first_occurrence(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique rows of int64[N, C] and the index of each one's first occurrence (ascending)."""
    uniq, inverse = key.unique(dim=0, return_inverse=True)
    first = torch.full((uniq.shape[0],), key.shape[0], dtype=torch.int64)
    first.scatter_reduce_(0, inverse, torch.arange(key.shape[0]), reduce="amin")
    return uniq, first.sort().values


# -- the objective on pairs ----------------------------------------------------------------------
def dpo_loss(logp_chosen: torch.Tensor, logp_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """DPO loss on preference pairs of selections (TPO's objective, applied to the sampler), a scalar.

    For each pair ``p`` (same question; ``chosen`` earned the higher reward)::

        h_p = beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected))
        L   = mean_p( w_p * -log sigmoid(h_p) ) / mean_p(w_p)

    ``ref_*`` are log-probabilities under a frozen reference agent and carry no gradient. A pair
    whose policy and reference margins agree (e.g. the untrained policy is the reference) gives
    ``log 2``; the gradient is ``-beta * sigmoid(-h) * grad(margin)``, so it raises the chosen
    selection's log-probability and lowers the rejected one's, and vanishes as ``beta -> 0``.

    Args:
        logp_chosen, logp_rejected: float[P] selection log-probs under the policy
            (:func:`tspo.objectives.grpo.selection_logp`), with gradient.
        ref_chosen, ref_rejected: float[P] the same under the reference.
        beta: > 0, inverse temperature of the implicit reward (how far from the reference the
            policy may move before a pair counts as learned).
        weights: float[P] >= 0 optional per-pair weights (e.g. reward margins); None = all 1.
    """
    shape = logp_chosen.shape
    if logp_chosen.dim() != 1 or any(t.shape != shape for t in (logp_rejected, ref_chosen, ref_rejected)):
        raise ObjectiveInputError(
            "dpo_loss: logp_chosen, logp_rejected, ref_chosen, ref_rejected must all be float[P], got "
            f"{[tuple(t.shape) for t in (logp_chosen, logp_rejected, ref_chosen, ref_rejected)]}")
    if shape[0] == 0:
        raise ObjectiveInputError("dpo_loss: no pairs (P = 0); skip the step or log more answers")
    if not (isinstance(beta, (int, float)) and beta > 0 and math.isfinite(beta)):
        raise ObjectiveInputError(f"dpo_loss: beta must be a finite number > 0, got {beta!r}")
    margin = (logp_chosen - ref_chosen.detach()) - (logp_rejected - ref_rejected.detach())
    per_pair = -torch.nn.functional.logsigmoid(beta * margin)
    if weights is None:
        return per_pair.mean()
    if weights.shape != shape or bool((weights < 0).any()):
        raise ObjectiveInputError(f"dpo_loss: weights must be float[P] >= 0 like the log-probs, got {tuple(weights.shape)}")
    w = weights.detach().to(per_pair.dtype)
    return (per_pair * w).sum() / w.sum().clamp(min=torch.finfo(w.dtype).tiny)
