"""The TSPO objective as small pure functions (paper Eq. 4-11): the rewards of a group from the
oracle's answers (Eq. 10-11, :func:`score_answers`), group advantages, the clipped policy-gradient
loss and the sampling distribution's pieces. The step that calls them, oracle round trip included,
is :mod:`tspo.training.grpo_step`: one GRPO step reads in these two files.

Shapes: ``B`` samples (questions) per batch, ``G`` draws per group, ``k`` frames per draw,
``T`` candidates. Every function is differentiable where it should be and has no state, so the
Lightning module is thin glue and each piece is tested alone.

Paper default (on-policy, Eq. 9 with Eq. 8):
    A_g = (r_g - mean_G r) / (std_G r + 1e-4)                       (unbiased std)
    L   = -mean_g( mean_{i in idx_g} exp(logp_i - logp_i.detach()) * A_g )
The value of L is -mean(A) (about 0) but its gradient is -mean_g A_g * mean_i grad logp_i, the
policy gradient of the per-frame log-probabilities of Eq. 5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tspo.errors import TSPOError
from tspo.manifest import Sample
from tspo.rewards import OracleAnswer, accuracy_reward, compose_reward, soft_accuracy_reward, temporal_reward


class ObjectiveInputError(TSPOError, ValueError):
    """Bad input to a TSPO objective function (shape mismatch, bad option value, ...)."""


ADV_EPS = 1e-4
# What R_T counts picks in, and how R_A reads an answer (``model.temporal_spans``, ``model.answer_reward``).
TEMPORAL_SPANS = ("target", "evidence")
ANSWER_REWARDS = ("hard", "soft")


def _check_mask(mask: torch.Tensor | None, like: torch.Tensor, name: str) -> torch.Tensor:
    if mask is None:
        return torch.ones_like(like, dtype=torch.bool)
    if mask.shape != like.shape:
        raise ObjectiveInputError(f"{name}: valid mask shape {tuple(mask.shape)} must match {tuple(like.shape)}")
    return mask.to(torch.bool)


def group_advantages(rewards: torch.Tensor, valid: torch.Tensor | None = None, eps: float = ADV_EPS) -> torch.Tensor:
    """Group-relative advantages (GRPO, paper Eq. 6/9).

    ``A_g = (r_g - mean r) / (std r + eps)`` over the valid members of each group, with the
    unbiased standard deviation. Invalid members (failed oracle answers) get A = 0 and do not
    enter the statistics. Degenerate groups (all valid rewards equal, or fewer than two valid
    members) get A = 0 exactly: they carry no learning signal and must never produce NaN.

    Args:
        rewards: float[B, G] (or [G]).
        valid: bool like rewards; False marks a dropped member.
    Returns:
        float like rewards, no gradient.
    """
    rewards = rewards.detach().to(torch.float32)
    if rewards.dim() not in (1, 2):
        raise ObjectiveInputError(f"group_advantages: rewards must be [G] or [B, G], got {tuple(rewards.shape)}")
    valid = _check_mask(valid, rewards, "group_advantages")
    w = valid.to(rewards.dtype)
    n = w.sum(-1, keepdim=True)
    mean = (rewards * w).sum(-1, keepdim=True) / n.clamp(min=1)
    dev = (rewards - mean) * w
    var = (dev**2).sum(-1, keepdim=True) / (n - 1).clamp(min=1)
    adv = dev / (var.sqrt() + eps)
    big, small = rewards.masked_fill(~valid, -math.inf), rewards.masked_fill(~valid, math.inf)
    degenerate = (n < 2) | (big.amax(-1, keepdim=True) == small.amin(-1, keepdim=True))
    return torch.where(degenerate | ~valid, torch.zeros_like(adv), adv)


def decoupled_advantages(r_a: torch.Tensor, r_t: torch.Tensor, valid: torch.Tensor | None = None,
                         eps: float = ADV_EPS, w_a: float = 1.0, w_t: float = 1.0) -> torch.Tensor:
    """Option: normalise R_A (Eq. 10) and R_T (Eq. 11) within the group separately, then
    ``w_a A(R_A) + w_t A(R_T)``.

    With the paper's summed reward a group whose R_T varies a lot drowns out R_A; normalising
    each reward alone gives both the same weight. The weights multiply the *normalised*
    advantages: group normalisation is scale-invariant, so weighting a reward before it would
    change nothing but the sign. [B, G], [B, G] -> [B, G].
    """
    if r_a.shape != r_t.shape:
        raise ObjectiveInputError(f"decoupled_advantages: r_a {tuple(r_a.shape)} and r_t {tuple(r_t.shape)} differ")
    return w_a * group_advantages(r_a, valid, eps) + w_t * group_advantages(r_t, valid, eps)


def explore_logits(logits: torch.Tensor, eps: float) -> torch.Tensor:
    """Logits of the ε-uniform mixture ``(1 − ε)·softmax(logits) + ε / T`` (log-probabilities): [..., T] -> [..., T].

    Beyond the paper, off by default (``eps = 0`` returns ``logits`` unchanged). At τ = 0.01-0.025 a
    frame that scores a little below the top is never drawn, so a question whose evidence does not
    look like its words (e.g. "what comes right after ...") never earns a reward for it. Sampling and
    the log-probabilities both use the mixture, so the GRPO update stays on-policy; inference still
    takes the top-k of the agent's scores.
    """
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"explore eps must be in [0, 1), got {eps!r}")
    if eps == 0.0:
        return logits
    uniform = torch.full_like(logits, math.log(eps / logits.shape[-1]))
    return torch.logaddexp(torch.log_softmax(logits, dim=-1) + math.log1p(-eps), uniform)


def relative_logits(scores: torch.Tensor, tau: float, eps: float = 1e-6) -> torch.Tensor:
    """Logits at a temperature relative to each row's score spread: float[..., T] -> float[..., T].

    ``(S - mean_T S) / (tau * std_T S)``, the spread detached (a constant of the sampling
    distribution, not something the update can shrink or grow). Beyond the paper, off by default
    (``model.tau_relative``): the paper's absolute tau 0.025 -> 0.01 makes a sampler far greedier once
    training has stretched the scores (a learned score spread of ~0.7 puts the top frames tens of
    logits apart), so the sampled sets stop reaching what the greedy policy misses; with ``tau`` in
    units of the spread, exploration stays the same at every score scale. Rows with constant scores
    get logits 0 (uniform), not NaN.
    """
    if not tau > 0:
        raise ObjectiveInputError(f"relative_logits: tau must be > 0, got {tau!r}")
    if scores.shape[-1] < 2:
        return scores - scores.detach()
    centred = scores - scores.mean(-1, keepdim=True)
    spread = scores.detach().std(-1, keepdim=True).clamp(min=eps)
    return centred / (tau * spread)


def plackett_luce_logp(logits: torch.Tensor, idx: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Exact per-step Plackett-Luce log-probabilities of an ordered draw (option; Eq. 5 made exact).

    Gumbel-top-k draws frames one after another without replacement, so the j-th drawn frame's
    probability is ``softmax`` over the frames *not yet drawn``, not over all T (the default
    per-frame ``log_softmax`` ignores this). The sum over j is the exact log-probability of the
    ordered sample.

    Args:
        logits: ``S / tau`` float[T] or [B, T] (with gradient).
        idx: int64[..., G, k] selected positions (ascending, as GumbelTopK returns them).
        order: int64[..., G, k] draw rank of each entry of idx (``GumbelTopK.sample(return_order=True)``).
    Returns:
        float[..., G, k]: log-prob of each selected frame at its draw step, aligned with ``idx``.
    """
    if idx.shape != order.shape:
        raise ObjectiveInputError(f"plackett_luce_logp: idx {tuple(idx.shape)} and order {tuple(order.shape)} differ")
    if idx.dim() != logits.dim() + 1:
        raise ObjectiveInputError("plackett_luce_logp: idx must be [G, k] for logits [T] or [B, G, k] for [B, T]")
    num_t = logits.shape[-1]
    logits_g = logits.unsqueeze(-2).expand(*idx.shape[:-1], num_t)              # [..., G, T]
    # Frames taken strictly before step j: one-hot of the draw-ordered picks, exclusive cumsum.
    drawn = idx.gather(-1, order.argsort(-1))                                   # [..., G, k] in draw order
    onehot = torch.nn.functional.one_hot(drawn, num_t).to(logits.dtype)         # [..., G, k, T]
    taken_before = (onehot.cumsum(-2) - onehot) > 0
    masked = logits_g.unsqueeze(-2).masked_fill(taken_before, -math.inf)        # [..., G, k, T]
    step_logp = logits_g.gather(-1, drawn) - torch.logsumexp(masked, dim=-1)    # draw order
    return step_logp.gather(-1, order)                                          # back to idx order


def span_mass_loss(logits: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """−log of the policy's probability mass inside annotated spans, averaged over questions that have
    any: logits ``S / tau`` float[B, T], inside bool[B, T] -> scalar (0 when no row has a span).

    Beyond the paper, off by default: a dense, label-using companion of R_T for synthetic needles,
    whose evidence seconds are known. R_T only rewards frames the sampler happened to draw; this
    moves probability towards the evidence whether or not it was drawn.
    """
    if logits.shape != inside.shape:
        raise ObjectiveInputError(f"span_mass_loss: logits {tuple(logits.shape)} vs inside {tuple(inside.shape)}")
    inside = inside.to(device=logits.device, dtype=torch.bool)
    has = inside.any(dim=-1)                                                        # [B]
    if not bool(has.any()):
        return logits.sum() * 0.0
    # rows without a span keep their logits (an all -inf row would send NaN back through the mean)
    masked = torch.where(has[:, None] & ~inside, float("-inf"), logits)
    per_row = torch.logsumexp(logits, dim=-1) - torch.logsumexp(masked, dim=-1)      # [B], 0 where no span
    return per_row[has].mean()


# k3's log-ratio beyond which it continues along its tangent (its gradient is bounded by exp(5) - 1 = 147)
KL_MAX_LOG_RATIO = 5.0


def kl_to_reference(logp_new: torch.Tensor, logp_ref: torch.Tensor,
                    max_log_ratio: float = KL_MAX_LOG_RATIO) -> torch.Tensor:
    """Per-frame unbiased KL estimate to a frozen reference policy (Schulman's k3, paper Eq. 6).

    ``k3(d) = exp(d) - d - 1`` >= 0 with ``d = logp_ref - logp_new`` (nats), evaluated at the sampled
    frames; same shapes in and out. For ``d > max_log_ratio`` it continues along its tangent,
    ``k3(c) + (exp(c) - 1)(d - c)``: value and gradient stay continuous and the gradient is bounded by
    ``exp(c) - 1``. Without the bound one frame the policy has moved far below the reference (per-frame
    log-probabilities of later picks under a peaked policy reach -50 while the reference's are -10)
    gives ``exp(40)``: a gradient norm of 1e11 that fills Adam's second moment and stalls training.
    """
    if logp_new.shape != logp_ref.shape:
        raise ObjectiveInputError(f"kl_to_reference: {tuple(logp_new.shape)} vs {tuple(logp_ref.shape)}")
    if not max_log_ratio > 0:
        raise ObjectiveInputError(f"kl_to_reference: max_log_ratio must be > 0, got {max_log_ratio!r}")
    d = logp_ref.detach() - logp_new
    inside = d.clamp(max=max_log_ratio)
    return torch.exp(inside) - inside - 1.0 + math.expm1(max_log_ratio) * (d - inside)


def _masked_group_mean(per_frame: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over k, then over the valid group members, then over B. [B, G, k], [B, G] -> scalar."""
    w = valid.to(per_frame.dtype)
    per_member = per_frame.mean(-1)                                             # [B, G]
    per_group = (per_member * w).sum(-1) / w.sum(-1).clamp(min=1)              # [B]
    return per_group.mean()


def tspo_loss(logp_new: torch.Tensor, logp_old: torch.Tensor | None, advantages: torch.Tensor,
              valid: torch.Tensor | None = None, clip_eps: float | None = None,
              logp_ref: torch.Tensor | None = None, kl_beta: float = 0.0) -> torch.Tensor:
    """TSPO policy loss (paper Eq. 9), a scalar to minimise.

    Default (paper, on-policy): ``logp_old`` is None (or ``logp_new.detach()``) and
    ``L = -mean_g( mean_i exp(logp_i - logp_old_i) * A_g )``.

    Options, off by default:
      - ``clip_eps``: PPO clipped ratio, ``-min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)`` per
        frame (CleanRL's ``max(pg_loss1, pg_loss2)``); use with several updates per rollout and
        ``logp_old`` stored at sampling time.
      - ``kl_beta`` > 0 with ``logp_ref``: adds ``beta * KL(pi || pi_ref)`` (Eq. 6, k3 estimator).

    Args:
        logp_new: float[B, G, k] (or [G, k]) log-probs of the selected frames under the current policy.
        logp_old: like logp_new, or None for on-policy.
        advantages: float[B, G] (or [G]).
        valid: bool[B, G]; members with a failed oracle answer are left out of the mean.
    """
    if logp_new.dim() == 2:
        logp_new = logp_new.unsqueeze(0)
        logp_old = None if logp_old is None else logp_old.unsqueeze(0)
        logp_ref = None if logp_ref is None else logp_ref.unsqueeze(0)
        advantages = advantages.unsqueeze(0)
        valid = None if valid is None else valid.unsqueeze(0)
    if logp_new.dim() != 3 or advantages.shape != logp_new.shape[:2]:
        raise ObjectiveInputError(
            f"tspo_loss: expected logp [B, G, k] and advantages [B, G], got {tuple(logp_new.shape)} and "
            f"{tuple(advantages.shape)}")
    if logp_old is None:
        logp_old = logp_new.detach()
    elif logp_old.shape != logp_new.shape:
        raise ObjectiveInputError(f"tspo_loss: logp_old {tuple(logp_old.shape)} must match logp_new {tuple(logp_new.shape)}")
    valid = _check_mask(valid, advantages, "tspo_loss")
    adv = advantages.detach().unsqueeze(-1)                                      # [B, G, 1]
    ratio = torch.exp(logp_new - logp_old.detach())
    per_frame = -ratio * adv
    if clip_eps is not None:
        if not clip_eps > 0:
            raise ObjectiveInputError(f"tspo_loss: clip_eps must be > 0, got {clip_eps}")
        clipped = -torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv
        per_frame = torch.maximum(per_frame, clipped)
    loss = _masked_group_mean(per_frame, valid)
    if kl_beta:
        if logp_ref is None:
            raise ObjectiveInputError("tspo_loss: kl_beta > 0 needs logp_ref (log-probs under the reference agent)")
        loss = loss + kl_beta * _masked_group_mean(kl_to_reference(logp_new, logp_ref), valid)
    return loss



def selection_logp(logp_frames: torch.Tensor) -> torch.Tensor:
    """Log-probability of a whole selection from its per-frame terms: float[..., k] -> float[..., k].sum(-1).

    With per-frame ``log_softmax(S / tau)`` terms this is the paper's Eq. 5 product of frame
    probabilities; with :func:`plackett_luce_logp` terms it is the exact log-probability of the
    ordered draw. Either way it is what the preference objective compares.
    """
    if logp_frames.dim() < 1 or logp_frames.shape[-1] < 1:
        raise ObjectiveInputError(f"selection_logp: expected per-frame log-probs [..., k], got {tuple(logp_frames.shape)}")
    return logp_frames.sum(-1)


@torch.no_grad()
def policy_stats(logp_new: torch.Tensor, logp_old: torch.Tensor, clip_eps: float | None = None) -> dict[str, float]:
    """CleanRL diagnostics: ``approx_kl = mean((ratio - 1) - log ratio)`` and the clipped fraction."""
    logratio = (logp_new - logp_old).float()
    ratio = logratio.exp()
    stats = {"approx_kl": float(((ratio - 1) - logratio).mean())}
    stats["clipfrac"] = float(((ratio - 1).abs() > clip_eps).float().mean()) if clip_eps else 0.0
    return stats


def policy_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the per-frame categorical ``softmax(logits)``, [..., T] -> [...]."""
    logp = torch.log_softmax(logits.detach().float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def temperature_at(step: int, max_steps: int, start: float = 0.025, end: float = 0.01) -> float:
    """Linear annealing of tau from ``start`` to ``end`` over ``max_steps`` (paper section 3.2), held after."""
    if max_steps <= 0:
        raise ObjectiveInputError(f"temperature_at: max_steps must be > 0, got {max_steps}")
    if not (start > 0 and end > 0):
        raise ObjectiveInputError(f"temperature_at: temperatures must be > 0, got start={start}, end={end}")
    frac = min(max(step, 0) / max_steps, 1.0)
    return start + (end - start) * frac


def picks_in_target(target_mask: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Share of each question's picks inside its target: target_mask bool[B, T], idx int64[B, G, k]
    -> float32[B] (mean over the G selections)."""
    return target_mask.to(idx.device).gather(-1, idx.flatten(1)).float().mean(-1)


# --- Rewards of a group (Eq. 10-11): the oracle's answers and the picks' seconds -> r [B, G] ---

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


def reward_spans(sample: Sample, which: str = "target") -> list[list[float]]:
    """The spans R_T counts picks in (seconds, ``[[start, end), ...]``): the needle's ``target`` material
    (the paper) or the ``evidence`` that answers its question (a needle without evidence spans raises)."""
    if which == "target":
        return sample.target_spans_s
    if which != "evidence":
        raise ObjectiveInputError(f"temporal_spans must be one of {TEMPORAL_SPANS}, got {which!r}")
    if not sample.evidence_spans_s:
        raise ObjectiveInputError(f"needle {sample.id!r} has no evidence_spans_s, so R_T cannot count picks in its evidence; "
                         "use model.temporal_spans: target, or a manifest with evidence spans (tspo synth)")
    return sample.evidence_spans_s


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
        raise ObjectiveInputError(f"answer_reward must be one of {ANSWER_REWARDS}, got {answer_reward!r}")
    if len(answers) != bsz * groups:
        raise ObjectiveInputError(f"score_answers: got {len(answers)} answers for {bsz} x {groups} selections")
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
