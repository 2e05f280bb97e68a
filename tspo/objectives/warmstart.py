"""The supervised warm start before GRPO (beyond the paper): a listwise loss on evidence membership.

Synthetic needles annotate the seconds that answer their question (``evidence_spans_s``). Before
GRPO, the agent can learn from them directly: its scores ``S`` [B, T] over the candidates become a
distribution ``softmax(S)``, and the loss is its cross-entropy against the uniform distribution over
the candidates inside the evidence,

    L_b = - mean_{t in E_b} log softmax(S_b)_t,     L = mean over rows with any evidence candidate.

Listwise (one softmax over the whole video), so only the ranking matters and the agent's score scale
is free; rows without evidence candidates carry no label and are left out (the caller counts them).
"""

from __future__ import annotations

import torch

from tspo.agents.rules import select_topk
from tspo.objectives.grpo import ObjectiveInputError, picks_in_target


def evidence_listwise_loss(scores: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy of ``scores`` float[B, T] against the uniform distribution over the
    candidates marked in ``inside`` bool[B, T] -> scalar, averaged over rows with at least one marked
    candidate (0, still attached to ``scores``' graph, when no row has one).

    Its minimum, ``log |E_b|``, is reached when the softmax puts equal mass on every evidence candidate
    and none elsewhere.
    """
    if scores.dim() != 2 or scores.shape != inside.shape:
        raise ObjectiveInputError(f"evidence_listwise_loss: scores [B, T] and inside [B, T] must agree, got "
                                  f"{tuple(scores.shape)} and {tuple(inside.shape)}")
    inside = inside.to(device=scores.device, dtype=torch.bool)
    counts = inside.sum(-1)                                                          # [B]
    has = counts > 0
    if not bool(has.any()):
        return scores.sum() * 0.0
    logp = torch.log_softmax(scores.float(), dim=-1)                                 # [B, T]
    per_row = -(logp * inside).sum(-1) / counts.clamp(min=1)                         # [B]
    return per_row[has].mean()


def greedy_in_evidence(scores: torch.Tensor, inside: torch.Tensor, k: int) -> torch.Tensor:
    """Share of the greedy top-``k`` candidates inside the evidence, per row: scores float[B, T],
    inside bool[B, T] -> float32[B] (k clipped to T; the one top-k rule, ties to the earlier frame)."""
    if scores.shape != inside.shape:
        raise ObjectiveInputError(f"greedy_in_evidence: scores {tuple(scores.shape)} vs inside {tuple(inside.shape)}")
    return picks_in_target(inside, select_topk(scores.detach(), min(k, scores.shape[-1])))
