"""The zoom training step (``model.zoom`` set): GRPO over both stages of the coarse-to-fine policy.

Glue between the batch (full ``fine_fps`` candidate grid of one video: ``data.max_candidates:
null``, ``data.batch_size: 1``), the agent, the oracle and the pure two-stage objective of
:mod:`tspo.objectives.zoom_credit`. Budget knobs come from :class:`tspo.selection.zoom.ZoomConfig` (``model.zoom`` is its
fields as a mapping). The ``max_frames`` cap is an inference budget: training draws whole spans.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tspo.agents import GumbelTopK
from tspo.objectives.zoom_credit import (
    coarse_positions,
    masked_logits,
    member_pool_mask,
    spans_from_picks,
    zoom_advantages,
    zoom_loss,
    zoom_reward,
)
from tspo.rewards import temporal_reward
from tspo.selection.zoom_config import ZoomConfig
from tspo.training.context import StepContext, StepOutput
from tspo.training.grpo_step import ask_oracle
from tspo.training.options import TrainingConfigError


def zoom_step(ctx: StepContext, cfg: ZoomConfig, batch: dict[str, Any]) -> StepOutput:
    """One GRPO step over both zoom stages for a batch of one question."""
    samples = list(batch["samples"])
    if len(samples) != 1:
        raise TrainingConfigError("zoom training takes one video per step: set data.batch_size: 1 (videos differ in length)")
    sample = samples[0]
    feats, text = batch["features"][0], batch["text"][0]                              # [T, D], [D]
    times = batch["timestamps"][0].to(torch.float64)                                  # [T] fine grid
    tau, gen, group, r = ctx.tau, ctx.generator, ctx.grpo.group_size, ctx.reward
    duration = float(sample.duration_s)

    # stage 1: coarse candidates -> G draws of num_spans span centres
    c_pos = torch.from_numpy(coarse_positions(times.cpu().numpy(), cfg.coarse_candidates)).to(feats.device)
    num_spans = min(cfg.num_spans, len(c_pos))
    logits_c = ctx.scores(feats[c_pos][None], text[None])[0] / tau                # [C]
    picks_c, logp_span = GumbelTopK(num_spans).sample(logits_c, group, gen)          # [G, S]
    spans = spans_from_picks(times[c_pos].cpu(), picks_c.cpu(), cfg.span_width(duration), duration)  # [G, S, 2]

    # stage 2: one agent pass over the pool (coarse + every member's spans), each member picks in its own
    t64 = times.cpu()
    is_coarse = torch.zeros(len(times), dtype=torch.bool)
    is_coarse[c_pos.cpu()] = True
    in_any = member_pool_mask(t64, is_coarse, spans.reshape(1, -1, 2))[0]            # [T]
    pool = torch.nonzero(in_any).squeeze(-1)                                         # [P] ascending
    logits_p = ctx.scores(feats[pool.to(feats.device)][None], text[None])[0] / tau
    allowed = member_pool_mask(t64[pool], is_coarse[pool], spans).to(logits_p.device)     # [G, P]
    k = min(ctx.policy.k, int(allowed.sum(-1).min()))
    picks_f, logp_frames = GumbelTopK(k).sample(masked_logits(logits_p, allowed), 1, gen)  # [G, 1, k]
    picks_f, logp_frames = picks_f[:, 0], logp_frames[:, 0]                          # [G, k]

    # rewards: answer (oracle on the final frames), temporal (picks in target), zoom (evidence in spans)
    grid_idx = pool.to(picks_f.device)[picks_f][None]                               # [1, G, k] positions on the grid
    pick_times, rewards = ask_oracle(ctx.oracle, samples, grid_idx, batch["timestamps"], r.frame_size,
                                     r.w_accuracy, r.w_temporal, r.temporal_spans, r.answer_reward)
    evidence = sample.evidence_spans_s or sample.target_spans_s
    r_zoom = torch.as_tensor(zoom_reward(spans, evidence), dtype=torch.float32)[None]  # [1, G]
    valid = rewards.valid
    a_span, a_frames = zoom_advantages(r_zoom, rewards.accuracy, rewards.temporal, valid, r.w_zoom,
                                       r.w_accuracy, r.w_temporal)
    dev = logp_span.device
    loss = zoom_loss(logp_span[None], logp_frames[None], a_span.to(dev), a_frames.to(dev), valid.to(dev))
    in_target = float(np.mean(temporal_reward(pick_times[0], sample.target_spans_s))) if sample.target_spans_s else 0.0
    metrics = {"train/loss": loss.detach(), "train/R_A": rewards.accuracy[valid].mean() if valid.any() else 0.0,
               "train/R_T": rewards.temporal.mean(), "train/R_zoom": r_zoom.mean(), "train/tau": tau,
               "train/in_target": in_target, "train/pool_frames": float(len(pool)),
               "train/oracle_failures": float(rewards.failures)}
    return StepOutput(loss, metrics, 1, progress=rewards.accuracy.mean() + r_zoom.mean())
