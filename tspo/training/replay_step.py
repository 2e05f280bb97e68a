"""One DPO update on stored preference pairs (``objective: dpo``, or replay inside GRPO with
``replay_ratio`` > 0); the maths is :func:`tspo.objectives.grpo.dpo_loss`. No oracle call."""

from __future__ import annotations

import torch

from tspo.agents import TemporalAgent
from tspo.features.dataset import collate
from tspo.objectives.grpo import selection_logp
from tspo.objectives.preference import PreferencePairs, dpo_loss
from tspo.training.context import StepContext, StepOutput, agent_scores
from tspo.training.options import PreferenceOptions


class ReferenceScores:
    """The frozen reference agent's scores, each dataset row computed once per run (the reference
    never changes, and a pair is replayed many times)."""

    def __init__(self, agent: TemporalAgent) -> None:
        self.agent = agent
        self._cache: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, rows: torch.Tensor, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """float32[U, T] for dataset ``rows`` int64[U] whose features [U, T, D] and text [U, D] are given."""
        missing = [i for i, r in enumerate(rows.tolist()) if r not in self._cache]
        if missing:
            fresh = agent_scores(self.agent, features[missing], text[missing])
            self._cache.update(zip(rows[missing].tolist(), fresh))
        return torch.stack([self._cache[r] for r in rows.tolist()])


def replay_step(ctx: StepContext, options: PreferenceOptions, pairs: PreferencePairs, dataset,
                reference: ReferenceScores) -> StepOutput:
    """One DPO update on ``pairs_per_step`` pairs drawn from ``pairs`` with the step's seed; ``dataset``
    is the training set the pairs' rows index."""
    tau = ctx.tau
    pick = torch.randint(len(pairs), (options.pairs_per_step,), generator=ctx.generator)
    rows, inverse = pairs.index[pick].unique(return_inverse=True)
    batch = collate([dataset[int(r)] for r in rows])
    features, text = batch["features"].to(ctx.device), batch["text"].to(ctx.device)
    chosen, rejected = pairs.chosen[pick].to(ctx.device), pairs.rejected[pick].to(ctx.device)
    inverse = inverse.to(ctx.device)

    def sel_logp(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(scores / tau, -1)[inverse]                                 # [P, T]
        return selection_logp(logp.gather(-1, chosen)), selection_logp(logp.gather(-1, rejected))

    lc, lr = sel_logp(ctx.scores(features, text))
    rc, rr = sel_logp(reference(rows, features, text))
    loss = dpo_loss(lc, lr, rc, rr, options.dpo_beta)
    with torch.no_grad():
        won = ((lc - rc) > (lr - rr)).float().mean()
    metrics = {"train/loss": loss.detach(), "train/dpo_accuracy": won, "train/tau": tau,
               "train/replay_pairs": float(len(pairs))}
    return StepOutput(loss, metrics, options.pairs_per_step)
