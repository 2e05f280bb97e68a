"""One single-stage GRPO step (paper Fig. 2 / Eq. 4-11), top to bottom; the maths is in :mod:`tspo.objectives.grpo`.

    S = agent(F_f, F_t)                    [B, T]   (cached features in, no video decode)
    idx, logp ~ GumbelTopK(k)(S / tau, G)  [B, G, k]
    answers = oracle(B * G queries)        one batched call, memoised by OracleCache
    r = R_A + R_T (needle) | R_A + 1       [B, G]   (failed queries masked; unparsed -> R_A = 0)
    A = group_advantages(r)                [B, G]
    L = tspo_loss(logp, logp_old, A)       scalar -> agent only
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tspo.agents import TemporalAgent
from tspo.agents.filter import train_only
from tspo.manifest import Sample
from tspo.objectives.grpo import (
    Rewards,
    decoupled_advantages,
    explore_logits,
    group_advantages,
    picks_in_target,
    plackett_luce_logp,
    policy_entropy,
    policy_stats,
    relative_logits,
    reward_spans,
    score_answers,
    span_mass_loss,
    tspo_loss,
)
from tspo.rewards import ask_about, group_picks
from tspo.spans import in_spans
from tspo.training.context import StepContext, StepOutput, batch_options, clipped_policy
from tspo.training.options import RewardOptions, TrainingConfigError


def policy_logits(ctx: StepContext, features: torch.Tensor, text: torch.Tensor,
                  agent: TemporalAgent | None = None, options: torch.Tensor | None = None,
                  option_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The sampling distribution's logits [B, T]: ``S / tau`` (``tau_relative``: tau times each row's score
    spread, :func:`~tspo.objectives.grpo.relative_logits`), mixed with uniform when ``explore_eps`` > 0."""
    scores = ctx.scores(features, text, agent, options, option_mask)
    logits = relative_logits(scores, ctx.tau) if ctx.grpo.tau_relative else scores / ctx.tau
    return explore_logits(logits, ctx.grpo.explore_eps)


def selection_log_probs(logprob: str, logits: torch.Tensor, idx: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """log-probabilities [B, G, k] of the picks ``idx`` under ``logits`` [B, T]: ``per_frame`` (paper:
    log_softmax at each pick) or ``plackett_luce`` (the ordered draw without replacement)."""
    if logprob == "plackett_luce":
        return plackett_luce_logp(logits, idx, order)
    return torch.log_softmax(logits, -1).unsqueeze(-2).expand(*idx.shape[:-1], logits.shape[-1]).gather(-1, idx)


def check_rl_trainable(agent: torch.nn.Module, which: str) -> None:
    """Raise unless ``model.rl_trainable`` = ``which`` can apply to ``agent`` (``"filter"`` needs the
    filter agent's ``filter`` submodule); changes nothing, so a module can refuse at construction."""
    if which == "all":
        return
    if which != "filter":
        raise TrainingConfigError(f"model.rl_trainable must be 'all' or 'filter', got {which!r}")
    if not isinstance(getattr(agent, "filter", None), torch.nn.Module):
        raise TrainingConfigError(f"model.rl_trainable: filter trains the filter agent's w(q) only, and this agent "
                                  f"({type(agent).__name__}) has none; set model.agent_family: filter or "
                                  f"model.rl_trainable: all")


def restrict_trainable(agent: torch.nn.Module, which: str) -> int:
    """Freeze what GRPO must not update (``model.rl_trainable``): ``"all"`` leaves the agent as it is;
    ``"filter"`` turns off ``requires_grad`` on every parameter outside the filter agent's ``filter``
    (the Linear that makes ``w(q)``; :func:`tspo.agents.filter.train_only`), so the paper part and the
    set head keep their warm-started weights (their gradients stay None and AdamW skips them).
    Idempotent. Returns the number of trainable parameters left; errors as :func:`check_rl_trainable`."""
    check_rl_trainable(agent, which)
    if which == "all":
        return sum(p.numel() for p in agent.parameters() if p.requires_grad)
    return sum(p.numel() for p in train_only(agent, ("filter",)))


def gather_times(timestamps: torch.Tensor, idx: torch.Tensor) -> np.ndarray:
    """Seconds of the selected candidates: timestamps float64[B, T], idx int64[B, G, k] -> float64[B, G, k]."""
    bsz, groups, k = idx.shape
    picked = timestamps.to(idx.device).gather(-1, idx.reshape(bsz, groups * k))
    return picked.reshape(bsz, groups, k).cpu().numpy().astype(np.float64)


def ask_oracle(oracle, samples: Sequence[Sample], idx: torch.Tensor, timestamps: torch.Tensor, frame_size: int,
               w_a: float = 1.0, w_t: float = 1.0, temporal_spans: str = "target",
               answer_reward: str = "hard") -> tuple[np.ndarray, Rewards]:
    """A GRPO group's selections -> rewards (this step's rollout; the zoom step's too): idx int64[B, G, k] candidate
    positions, timestamps float64[B, T] seconds -> (times float64[B, G, k], :class:`Rewards` [B, G]).
    Asked through the one selections -> oracle path (:func:`tspo.rewards.ask_about`: whole frames only when
    the oracle needs pixels, all B * G queries in one call)."""
    times = gather_times(timestamps, idx)
    answers = ask_about(oracle, samples, group_picks(idx), list(timestamps.cpu().numpy()), frame_size)
    return times, score_answers(samples, answers, times, w_a, w_t, temporal_spans, answer_reward)


def rollout(ctx: StepContext, batch: dict[str, Any], logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Rewards]:
    """Sample G selections per question and score them with the oracle: -> (idx, order, Rewards)."""
    policy = clipped_policy(ctx.policy, logits.shape[-1])
    idx, _, order = policy.sample(logits.detach(), ctx.grpo.group_size, ctx.generator, return_order=True)
    r = ctx.reward
    _, rewards = ask_oracle(ctx.oracle, list(batch["samples"]), idx, batch["timestamps"], r.frame_size,
                            r.w_accuracy, r.w_temporal, r.temporal_spans, r.answer_reward)
    return idx, order, rewards


def advantages(options: RewardOptions, rewards: Rewards) -> torch.Tensor:
    """Advantages float32[B, G]; failed queries (``rewards.valid`` False) get 0.

    ``grouped``: GRPO over ``total = w_a R_A + w_t R_T``. ``decoupled``:
    :func:`tspo.objectives.grpo.decoupled_advantages` with the same weights.
    """
    if options.advantage == "decoupled":
        return decoupled_advantages(rewards.accuracy, rewards.temporal, rewards.valid,
                                    w_a=options.w_accuracy, w_t=options.w_temporal)
    return group_advantages(rewards.total, rewards.valid)


def reward_span_mask(batch: dict[str, Any], temporal_spans: str) -> torch.Tensor:
    """bool[B, T]: candidates inside the spans R_T counts (``temporal_spans``); general questions: none."""
    if temporal_spans == "target":     # the DataModule already marks the target
        return batch["target_mask"]
    times = batch["timestamps"].cpu().numpy()
    rows = [in_spans(times[b], reward_spans(s, temporal_spans)) if s.kind == "needle"
            else np.zeros(times.shape[1], dtype=bool) for b, s in enumerate(batch["samples"])]
    return torch.from_numpy(np.stack(rows))


@dataclass
class GRPOStep(StepOutput):
    """A GRPO step's output, plus its rollout (for replay: the group's preference pairs)."""

    idx: torch.Tensor | None = None
    rewards: Rewards | None = None


def grpo_step(ctx: StepContext, batch: dict[str, Any]) -> GRPOStep:
    """Rollout, advantages and the clipped policy-gradient loss of one batch.

    With ``num_iterations`` > 1 (PPO) the rollout is reused for several updates through ``ctx.update``;
    the returned loss is the last update's.
    """
    g = ctx.grpo
    features, text = batch["features"], batch["text"]
    logits = policy_logits(ctx, features, text, **batch_options(batch))           # [B, T]
    idx, order, rewards = rollout(ctx, batch, logits)
    valid = rewards.valid.to(ctx.device)
    adv = advantages(ctx.reward, rewards).to(ctx.device)
    logp_new = selection_log_probs(g.logprob, logits, idx, order)                 # once per step
    logp_old = logp_new.detach()
    logp_ref = None
    if ctx.ref_agent is not None and g.kl_beta:
        with torch.no_grad():
            logp_ref = selection_log_probs(g.logprob, policy_logits(ctx, features, text, ctx.ref_agent,
                                                                    **batch_options(batch)), idx, order)
    loss_kw = {"valid": valid, "clip_eps": g.clip_eps, "logp_ref": logp_ref, "kl_beta": g.kl_beta}
    span_mask = reward_span_mask(batch, ctx.reward.temporal_spans).to(ctx.device) if g.span_loss else None  # [B, T]

    def loss_of(logits: torch.Tensor, logp_new: torch.Tensor) -> torch.Tensor:
        loss = tspo_loss(logp_new, logp_old, adv, **loss_kw)
        if span_mask is not None:
            loss = loss + g.span_loss * span_mass_loss(logits, span_mask)
        return loss

    if ctx.update is None:
        loss = loss_of(logits, logp_new)
        stats = policy_stats(logp_new, logp_old, g.clip_eps)
    else:
        for it in range(g.num_iterations):
            if it:  # the first update reuses the rollout's log-probs; later ones see the moved agent
                logits = policy_logits(ctx, features, text)
                logp_new = selection_log_probs(g.logprob, logits, idx, order)
            stats = policy_stats(logp_new, logp_old, g.clip_eps)                # before this update, as CleanRL
            loss = loss_of(logits, logp_new)
            ctx.update(loss)
    metrics = step_metrics(ctx, batch, logits, idx, rewards, adv, loss, stats)
    return GRPOStep(loss, metrics, len(batch["samples"]), metrics["train/reward"], idx=idx, rewards=rewards)


def step_metrics(ctx: StepContext, batch: dict[str, Any], logits: torch.Tensor, idx: torch.Tensor,
                 rewards: Rewards, adv: torch.Tensor, loss: torch.Tensor, stats: dict[str, float]) -> dict[str, Any]:
    """What a GRPO step logs (``train/...``): rewards, advantage spread, temperature, policy and oracle health."""
    valid = rewards.valid
    needle = torch.tensor([s.kind == "needle" for s in batch["samples"]])
    metrics = {
        "train/loss": loss.detach(),
        "train/reward": _masked_mean(rewards.total, valid),
        "train/R_A": _masked_mean(rewards.accuracy, valid),
        "train/adv_std": adv[valid.to(adv.device)].std() if int(valid.sum()) > 1 else 0.0,
        "train/tau": ctx.tau,
        "train/entropy": policy_entropy(logits).mean(),
        "train/oracle_failures": float(rewards.failures),
        "train/oracle_unparsed": float(rewards.num_unparsed),
        "train/cache_hit_rate": ctx.oracle.hit_rate,
        "train/approx_kl": stats["approx_kl"],
        "train/clipfrac": stats["clipfrac"],
    }
    if bool(needle.any()):
        inside = picks_in_target(batch["target_mask"], idx)                        # [B]
        metrics["train/R_T"] = _masked_mean(rewards.temporal[needle], valid[needle])
        metrics["train/in_target"] = inside[needle.to(inside.device)].mean()
    return metrics


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(x.device)
    return (x * mask).sum() / mask.sum().clamp(min=1)
