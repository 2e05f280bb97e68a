"""One warm-start step (``model.warmstart_steps`` > 0): supervised on evidence spans, before GRPO.

    S = agent(F_f, F_t)                         [B, T]   (any agent: features [B, T, D], text [B, D] -> scores)
    E = candidates inside the evidence spans    [B, T]   (only samples of ``warmstart_kinds``, with spans)
    G = candidates inside each evidence group   [B, G, T] (one group per key event, ``evidence_groups_s``)
    L = evidence_group_loss(S, G, tau)          scalar   (``model.warmstart_loss: group``, the default)
      | evidence_listwise_loss(S, E)                     (``uniform``; :mod:`tspo.objectives.warmstart`)

No oracle call. Logged like GRPO (``train/loss``) plus what the greedy top-k would pick:
``train/coverage`` (share of supervised questions whose greedy picks satisfy their coverage rule, or,
without a rule, hold at least one evidence pick), ``train/in_evidence`` (share of greedy picks inside
the evidence) and ``train/warmstart_skipped`` (samples of this batch without span supervision).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tspo.agents import GumbelTopK
from tspo.objectives.grpo import picks_in_target
from tspo.objectives.set_rule import set_head_loss
from tspo.objectives.warmstart import evidence_group_loss, evidence_listwise_loss, loss_scaled
from tspo.rewards.simulated import covers_groups
from tspo.spans import as_spans, in_spans, span_hits
from tspo.training.context import StepContext, StepOutput, batch_options, clipped_policy
from tspo.training.options import WarmStartOptions


def evidence_mask(batch: dict[str, Any], options: WarmStartOptions) -> tuple[torch.Tensor, int]:
    """bool[B, T]: candidates inside the evidence spans of the samples the warm start supervises, and how
    many samples of the batch it skips (kind not in ``warmstart_kinds``, or no evidence spans; all-False rows)."""
    times = batch["timestamps"].cpu().numpy()                                       # float64[B, T] seconds
    rows, skipped = [], 0
    for b, sample in enumerate(batch["samples"]):
        row = (in_spans(times[b], sample.evidence_spans_s) if options.supervises(sample)
               else np.zeros(times.shape[1], dtype=bool))
        skipped += not row.any()
        rows.append(row)
    return torch.from_numpy(np.stack(rows)), skipped


def evidence_groups(sample: Any) -> list:
    """A sample's evidence groups, seconds: ``extra["evidence_groups_s"]`` (one list of ``[start_s, end_s]``
    spans per key event, as the synthesizer writes it) or, without it, all ``evidence_spans_s`` as one
    group; [] without evidence."""
    extra = getattr(sample, "extra", None) or {}
    groups = extra.get("evidence_groups_s")
    if groups:
        return [list(g) for g in groups]
    spans = getattr(sample, "evidence_spans_s", None) or []
    return [list(spans)] if len(spans) else []


def group_masks(timestamps_s: np.ndarray, groups: list) -> np.ndarray:
    """Which candidates lie in each evidence group: timestamps float[T] seconds, groups (a list of G
    lists of ``[start_s, end_s]`` spans) -> bool[G, T] (the one span rule, :func:`tspo.spans.span_hits`)."""
    times = np.asarray(timestamps_s, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"group_masks: timestamps_s must be float[T] seconds, got shape {times.shape}")
    spans = [as_spans(g) for g in groups]
    if not spans:
        return np.zeros((0, times.shape[0]), dtype=bool)
    owner = np.repeat(np.arange(len(spans)), [len(s) for s in spans])                   # [S] group of each span
    hits = span_hits(times, np.concatenate(spans, axis=0))                               # [T, S]
    onehot = np.zeros((owner.shape[0], len(spans)), dtype=np.int64)
    onehot[np.arange(owner.shape[0]), owner] = 1                                         # [S, G]
    return (hits.astype(np.int64) @ onehot).T > 0                                        # [G, T]


def per_frame_groups(masks: np.ndarray, sample: Any) -> np.ndarray:
    """The evidence groups the loss asks mass on when a question needs several picks inside one event
    (coverage ``min_picks`` >= 2, the motion kind: two frames of one event): one group per evidence frame,
    so the group loss wants mass on every frame of the event (the uniform listwise loss over them), not
    on the event as a whole, which one frame can satisfy. masks bool[G, T] (:func:`group_masks`) ->
    bool[G', T]; unchanged for other questions."""
    coverage = (getattr(sample, "extra", None) or {}).get("coverage") or {}
    if coverage.get("min_picks", 1) < 2 or not masks.size:
        return masks
    frames = masks.any(0)                                                           # [T]
    return np.eye(frames.shape[0], dtype=bool)[frames]                             # [frames in evidence, T]


def batch_group_masks(batch: dict[str, Any], options: WarmStartOptions) -> torch.Tensor:
    """bool[B, G, T] (G = the most groups of a row; missing groups all False) of the samples the warm
    start supervises (:meth:`WarmStartOptions.supervises`; other rows all False); with
    ``options.multi_pick_frames``, :func:`per_frame_groups`."""
    times = batch["timestamps"].cpu().numpy()                                       # float64[B, T] seconds
    rows = []
    for b, s in enumerate(batch["samples"]):
        masks = group_masks(times[b], evidence_groups(s)) if options.supervises(s) else np.zeros((0, times.shape[1]), bool)
        rows.append(per_frame_groups(masks, s) if options.multi_pick_frames else masks)
    return pad_group_masks([torch.from_numpy(r) for r in rows], times.shape[1])


def pad_group_masks(rows: Sequence[torch.Tensor], num_frames: int) -> torch.Tensor:
    """One batch of evidence-group masks: per row bool[G_i, T_i] (T_i <= ``num_frames``) -> bool[B, G, T]
    with G = the most groups of a row (at least 1) and T = ``num_frames``; False where a row has fewer
    groups or frames."""
    num_groups = max([1, *(int(r.shape[0]) for r in rows)])
    out = torch.zeros(len(rows), num_groups, num_frames, dtype=torch.bool)
    for b, r in enumerate(rows):    # one copy per row (B of them), no loop over frames
        out[b, : r.shape[0], : r.shape[1]] = r
    return out


def greedy_coverage(batch: dict[str, Any], picks: torch.Tensor, rows: torch.Tensor) -> float | None:
    """Share of the questions ``rows`` bool[B] whose greedy picks int64[B, k] satisfy their coverage rule
    (``extra["coverage"]``, as the SimulatedOracle and the per-kind report judge it) or, without a rule,
    have a pick inside ``evidence_spans_s``; None when no row is selected."""
    times = batch["timestamps"].to(picks.device).gather(-1, picks).cpu().numpy()     # float64[B, k] seconds
    hits = []
    for b in torch.nonzero(rows).flatten().tolist():
        sample, ts = batch["samples"][b], np.sort(times[b])
        rule = sample.extra.get("coverage")
        hits.append(covers_groups(ts, sample.extra.get("evidence_groups_s"), rule, sample.id) if rule
                    else bool(in_spans(ts, sample.evidence_spans_s).any()))
    return float(np.mean(hits)) if hits else None


def clipped_policy_greedy(scores: torch.Tensor, k: int) -> torch.Tensor:
    """int64[B, k'] greedy picks (ascending positions) with k clipped to T by the one rule."""
    return clipped_policy(GumbelTopK(k), scores.shape[-1]).greedy(scores.detach())


def warmstart_step(ctx: StepContext, options: WarmStartOptions, batch: dict[str, Any],
                   log_scale: torch.Tensor | None = None) -> StepOutput:
    """The listwise evidence loss of one batch (and, with several PPO iterations per rollout, its update);
    ``log_scale``: the learned loss scale (``model.warmstart_learn_scale``, :func:`loss_scaled`; None: off)."""
    features, text = batch["features"], batch["text"]
    scores = ctx.scores(features, text, None, **batch_options(batch))              # [B, T]
    inside, skipped = evidence_mask(batch, options)
    inside = inside.to(scores.device)
    scaled = loss_scaled(scores, log_scale)
    if options.loss == "group":
        loss = evidence_group_loss(scaled, batch_group_masks(batch, options).to(scores.device), options.tau)
    else:
        loss = evidence_listwise_loss(scaled, inside)
    # the set head learns which set rule each supervised question needs (suppress for count / order,
    # top-k for motion); agents without one (the paper's) add nothing
    aux = set_head_loss(ctx.agent, text, batch["samples"], inside.any(-1))
    if aux is not None:
        loss = loss + aux
    if ctx.update is not None:          # manual optimisation (num_iterations > 1): one supervised update
        ctx.update(loss)
    rows = inside.any(-1)
    metrics: dict[str, Any] = {"train/loss": loss.detach(), "train/warmstart_skipped": float(skipped)}
    if aux is not None:
        metrics["train/warmstart_aux"] = aux.detach()
    if log_scale is not None:
        metrics["train/warmstart_log_scale"] = log_scale.detach()
    if bool(rows.any()):
        picks = clipped_policy_greedy(scores, ctx.grpo.num_frames)                     # [B, k]
        metrics["train/in_evidence"] = picks_in_target(inside, picks)[rows].mean()
        metrics["train/coverage"] = greedy_coverage(batch, picks, rows)
    return StepOutput(loss, metrics, len(batch["samples"]))
