"""Which set rule a question needs: the target and loss of the filter agent's set head (pure maths).

The filter agent (:class:`tspo.agents.FilterAgent`) predicts, from the pooled question embedding, one
logit: > 0 = spread the picks over distinct events (temporal non-max suppression, ``tspo+shot`` / ``tspo+nms``),
<= 0 = plain top-k. The right answer follows from what a selection must show (a sample's coverage
rule and evidence groups, ``tspo.data_synth.events.COVERAGE_RULES``):

- several picks inside one event (``min_picks`` >= 2, the motion kind): **keep** (target 0);
  suppression would leave one pick per event;
- one pick in *each* of several evidence groups (``rule: all`` with >= 2 groups: order, count):
  **suppress** (target 1): top-k spends its k picks on the best-looking event;
- anything else (one pick anywhere: colour, text, shape, after; or a single group): no preference,
  weight 0 (the loss ignores it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

KEEP, SUPPRESS = 0.0, 1.0


def set_rule_target(coverage: Mapping[str, Any] | None, num_groups: int) -> float | None:
    """The set head's target for one question: 1.0 (suppress), 0.0 (keep top-k) or None (no preference).

    ``coverage``: ``{"rule": "any" | "all", "min_picks": int}`` (None: the sample has no rule);
    ``num_groups``: how many evidence groups (key events) the rule counts in.
    """
    if coverage is None:
        return None
    rule, need = coverage.get("rule"), coverage.get("min_picks", 1)
    if rule not in ("any", "all") or not isinstance(need, int) or need < 1:
        raise ValueError(f"coverage must be {{'rule': 'any' | 'all', 'min_picks': int >= 1}}, got {dict(coverage)!r}")
    if not isinstance(num_groups, int) or num_groups < 0:
        raise ValueError(f"num_groups must be an int >= 0, got {num_groups!r}")
    if need >= 2:
        return KEEP
    if rule == "all" and num_groups >= 2:
        return SUPPRESS
    return None


def set_rule_targets(samples: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and weights float32[B] of a batch of manifest samples (``Sample.extra["coverage"]`` and
    ``["evidence_groups_s"]``, as the synthesizer writes them); weight 0 where there is no preference."""
    target, weight = [], []
    for s in samples:
        extra = getattr(s, "extra", None) or {}
        groups = extra.get("evidence_groups_s") or []
        t = set_rule_target(extra.get("coverage"), len(groups))
        target.append(0.0 if t is None else t)
        weight.append(0.0 if t is None else 1.0)
    return torch.tensor(target, dtype=torch.float32), torch.tensor(weight, dtype=torch.float32)


def set_rule_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted binary cross-entropy of the set head: logits, target, weight float[B] -> scalar.

    The mean over weighted rows; 0 (still differentiable) when no row has a preference."""
    if logits.shape != target.shape or logits.shape != weight.shape:
        raise ValueError(f"logits, target and weight must have one shape [B], got {tuple(logits.shape)}, "
                         f"{tuple(target.shape)}, {tuple(weight.shape)}")
    weight = weight.to(logits)
    per_row = F.binary_cross_entropy_with_logits(logits, target.to(logits), reduction="none")
    return (per_row * weight).sum() / weight.sum().clamp_min(1.0)


def set_head_loss(agent: Any, text: torch.Tensor, samples: Sequence[Any], rows: torch.Tensor | None = None
                  ) -> torch.Tensor | None:
    """The set-rule loss of an agent's set head (its ``set_logit``) on a batch: text float[B, D] (question
    embeddings), ``samples`` their manifest samples, ``rows`` bool[B] the rows that count (None: all; e.g.
    the rows a warm start supervises) -> scalar, or None for an agent without a set head (the paper's).
    The one owner of this loss: the Lightning warm start, ``span_fit`` and its full-batch head fit ask it."""
    set_logit = getattr(agent, "set_logit", None)
    if set_logit is None:
        return None
    target, weight = set_rule_targets(samples)
    weight = weight.to(text.device)
    if rows is not None:
        weight = weight * rows.to(device=text.device, dtype=weight.dtype)
    return set_rule_loss(set_logit(text), target.to(text.device), weight)


__all__ = ["KEEP", "SUPPRESS", "set_head_loss", "set_rule_loss", "set_rule_target", "set_rule_targets"]
