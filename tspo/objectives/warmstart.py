"""The supervised warm start before GRPO (beyond the paper): a listwise loss on evidence membership.

Synthetic needles annotate the seconds that answer their question (``evidence_spans_s``). Before
GRPO, the agent can learn from them directly: its scores ``S`` [B, T] over the candidates become a
distribution ``softmax(S)``, and the loss is its cross-entropy against the uniform distribution over
the candidates inside the evidence,

    L_b = - mean_{t in E_b} log softmax(S_b)_t,     L = mean over rows with any evidence candidate.

Listwise (one softmax over the whole video), so only the ranking matters and the agent's score scale
is free; rows without evidence candidates carry no label and are left out (the caller counts them).

:func:`evidence_group_loss` (the warm start's default, ``model.warmstart_loss: group``) asks for mass on
*each* evidence group (one per key event: every appearance of a counted object, both events of an
order question) instead of spreading one uniform target over their union, at temperature ``tau``:

    L_b = - mean_{g in groups_b} log sum_{t in E_bg} softmax(S_b / tau)_t,

so a count question with three appearances cannot be satisfied by the easiest one alone.
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
    # where, not logp * inside: a masked-out frame (score -inf) has logp -inf and -inf * 0 is NaN
    picked = torch.where(inside, logp, torch.zeros_like(logp))
    per_row = -picked.sum(-1) / counts.clamp(min=1)                                  # [B]
    return per_row[has].mean()


DEFAULT_GROUP_TAU = 0.1

# The learned loss scale's learning rate, in units of the agent's: large enough that exp(a) can reach
# ~e^10 within a fit of a few thousand steps (the paper part's 2 cos spans ~0.1 against tau 0.1).
LOSS_SCALE_LR_FACTOR = 10


def loss_scaled(scores: torch.Tensor, log_scale: torch.Tensor | None, frame_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
    """``exp(log_scale) · S``: what the warm-start losses read when the loss side has a learned scale
    (``model.warmstart_learn_scale``, ``SpanFit.learn_scale``). scores float[B, T], log_scale a scalar
    tensor (None: scores unchanged), frame_mask bool[B, T] (True = a real frame; None: all real) ->
    float[B, T]. Rankings do not change with the scale, so the agent need not amplify every profile to
    meet the loss's temperature. Padded frames keep their score (-inf) with no ``-inf * 0`` reaching the
    scale's gradient."""
    if log_scale is None:
        return scores
    if log_scale.dim() != 0:
        raise ObjectiveInputError(f"loss_scaled: log_scale must be a scalar tensor, got shape {tuple(log_scale.shape)}")
    if frame_mask is None:
        return scores * log_scale.exp()
    if frame_mask.shape != scores.shape:
        raise ObjectiveInputError(f"loss_scaled: frame_mask {tuple(frame_mask.shape)} must match scores {tuple(scores.shape)}")
    return torch.where(frame_mask, torch.where(frame_mask, scores, 0.0) * log_scale.exp(), scores)


GROUP_REDUCTIONS = ("mean", "max")


def evidence_group_loss(scores: torch.Tensor, group_masks: torch.Tensor, tau: float = DEFAULT_GROUP_TAU,
                        reduce: str = "mean") -> torch.Tensor:
    """Listwise loss per evidence group: scores float[B, T], group_masks bool[B, G, T] (frame t in group g
    of row b; groups without a frame are padding) -> scalar, the mean over rows with at least one
    non-empty group of ``mean_g -log`` (softmax(S_b / tau) mass on group g). 0, still attached to
    ``scores``' graph, when no row has a group. ``tau`` > 0 is in units of the scores.

    Frames with score -inf (masked candidates) get no mass and give no NaN. Its minimum, ``log G_b``,
    is reached when each group holds 1 / G_b of the mass (the groups are disjoint) and nothing is
    outside them. ``reduce="max"``: a row's loss is its worst group's (the coverage rule "all" is a
    minimum over groups), not the mean over its groups.
    """
    if scores.dim() != 2 or group_masks.dim() != 3 or group_masks.shape[0] != scores.shape[0] \
            or group_masks.shape[2] != scores.shape[1]:
        raise ObjectiveInputError(f"evidence_group_loss: scores must be [B, T] and group_masks [B, G, T], got "
                                  f"{tuple(scores.shape)} and {tuple(group_masks.shape)}")
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not tau > 0:
        raise ObjectiveInputError(f"evidence_group_loss: tau must be a number > 0 (score units), got {tau!r}")
    if reduce not in GROUP_REDUCTIONS:
        raise ObjectiveInputError(f"evidence_group_loss: reduce must be one of {GROUP_REDUCTIONS}, got {reduce!r}")
    masks = group_masks.to(device=scores.device, dtype=torch.bool)
    valid = masks.any(-1)                                                            # [B, G]
    counts = valid.sum(-1)                                                           # [B]
    has = counts > 0
    if not bool(has.any()):
        return scores.sum() * 0.0
    logp = torch.log_softmax(scores.float() / tau, dim=-1)                           # [B, T]
    inside = logp[:, None, :].masked_fill(~masks, float("-inf"))                     # [B, G, T]
    mass = torch.logsumexp(inside, dim=-1)                                           # [B, G] (-inf: empty)
    per_group = torch.where(valid, -mass, torch.zeros_like(mass))                    # >= 0; empty groups 0
    per_row = per_group.amax(-1) if reduce == "max" else per_group.sum(-1) / counts.clamp(min=1)   # [B]
    return per_row[has].mean()


def greedy_in_evidence(scores: torch.Tensor, inside: torch.Tensor, k: int) -> torch.Tensor:
    """Share of the greedy top-``k`` candidates inside the evidence, per row: scores float[B, T],
    inside bool[B, T] -> float32[B] (k clipped to T; the one top-k rule, ties to the earlier frame)."""
    if scores.shape != inside.shape:
        raise ObjectiveInputError(f"greedy_in_evidence: scores {tuple(scores.shape)} vs inside {tuple(inside.shape)}")
    return picks_in_target(inside, select_topk(scores.detach(), min(k, scores.shape[-1])))
