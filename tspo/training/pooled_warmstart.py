"""A batched warm-start step (``model.warmstart_batch_size``): the span warm start on N needles of its own.

Videos of different lengths cannot share the DataModule's collated batch, so a plain warm-start step
(:func:`tspo.training.warmstart_step.warmstart_step`) sees one question. Here a step draws N supervised
training needles from a :class:`~tspo.training.span_fit.SpanPool` with the step's seeded generator, pads
them to one length (frame mask), and takes :func:`~tspo.training.span_fit.span_loss` of them:

    S = agent(F_f [N, T, D], F_t [N, D], frame_mask [N, T])   [N, T]   (-inf where padded)
    L = evidence_group_loss(exp(a) S, groups [N, G, T], tau) + set_head_loss
"""

from __future__ import annotations

from typing import Any

import torch

from tspo.objectives.grpo import picks_in_target
from tspo.training.context import StepContext, StepOutput
from tspo.training.options import WarmStartOptions
from tspo.training.span_fit import SpanFit, SpanPool, padded_scores, span_loss
from tspo.training.warmstart_step import clipped_policy_greedy, greedy_coverage


def pooled_warmstart_step(ctx: StepContext, options: WarmStartOptions, pool: SpanPool,
                          log_scale: torch.Tensor | None = None) -> StepOutput:
    """A warm-start step on ``options.batch_size`` needles of its own (``model.warmstart_batch_size``): drawn
    from ``pool`` (a :class:`tspo.training.span_fit.SpanPool` of the supervised training needles) with the
    step's seeded generator, padded to one length, and scored by :func:`tspo.training.span_fit.span_loss`
    (the same evidence loss, set-head loss and learned loss scale as :func:`warmstart_step`, so the two
    differ only in how many needles a step sees). Logs what :func:`warmstart_step` logs."""
    batch, samples = pool.draw(options.batch_size, ctx.generator)
    batch = {k: v.to(ctx.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    scores = padded_scores(ctx.agent, batch)                                          # [B, T], -inf where padded
    fit = SpanFit(tau=options.tau, loss=options.loss, spread=1.0, multi_pick_frames=options.multi_pick_frames,
                  progress=False)
    loss, parts = span_loss(ctx.agent, batch, samples, fit, log_scale, scores)
    if ctx.update is not None:          # manual optimisation (num_iterations > 1): one supervised update
        ctx.update(loss)
    # padded frames: the lowest finite score, so the greedy rule (which refuses -inf) never picks them
    finite = torch.where(batch["frame_mask"], scores.detach(), torch.finfo(scores.dtype).min)
    picks = clipped_policy_greedy(finite, ctx.grpo.num_frames)                         # [B, k]
    rows = torch.ones(len(samples), dtype=torch.bool)
    metrics: dict[str, Any] = {"train/loss": loss.detach(), "train/warmstart_skipped": 0.0,
                               "train/in_evidence": picks_in_target(batch["groups"].any(1), picks).mean(),
                               "train/coverage": greedy_coverage({"timestamps": batch["timestamps"], "samples": samples},
                                                                 picks, rows)}
    if "set" in parts:
        metrics["train/warmstart_aux"] = parts["set"]
    if log_scale is not None:
        metrics["train/warmstart_log_scale"] = log_scale.detach()
    return StepOutput(loss, metrics, len(samples))
