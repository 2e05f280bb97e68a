"""Held-out check of a selection rule: fraction of picks in the target, and oracle accuracy.

Used by the learning check (tests and ``benchmarks/bench_learning.py``): the trained agent's
greedy top-k (as at inference, no noise) against the untrained agent, uniform sampling and CLIP
top-k, on samples never seen in training, answered by the same frozen oracle.
"""

from __future__ import annotations

import torch

from tspo.agents import METHODS, RULES, get_method
from tspo.evaluation.judge import Outcome, judge_selections, metrics_of
from tspo.features.dataset import FeatureDataset, collate
from tspo.settings import DEFAULT_FRAME_SIZE

# Every registered method whose rule keeps exactly k per row (top-k, uniform): tspo, uniform, clip.
HELDOUT_METHODS = tuple(name for name in METHODS if RULES[get_method(name).rule].batched)


@torch.no_grad()
def heldout_metrics(dataset: FeatureDataset, oracle, k: int, agent=None, methods=HELDOUT_METHODS,
                    batch_size: int = 64, frame_size: int = DEFAULT_FRAME_SIZE) -> dict[str, dict[str, float]]:
    """``{method: {"target_fraction", "accuracy", "failures", "unparsed", "n"}}`` over every sample.

    ``target_fraction`` = mean over needle samples of ``#picks in target / k`` (None without needle
    samples); ``accuracy`` = mean R_A over answered queries (an unparsed answer is answered and
    wrong; a failed query is left out and counted in ``failures``). ``agent`` is needed for
    ``"tspo"``. ``tspo`` and ``clip`` take the top-k of their scores (as at inference, no noise)
    for the whole batch at once, ``uniform`` the same evenly spaced positions for every row.
    """
    chosen = {m: get_method(m) for m in methods}
    if agent is None and any(m.needs_agent for m in chosen.values()):
        raise ValueError(f"heldout_metrics: methods {[n for n, m in chosen.items() if m.needs_agent]} need the agent")
    unbatched = [n for n, m in chosen.items() if not RULES[m.rule].batched]
    if unbatched:
        raise ValueError(f"heldout_metrics: methods {unbatched} use a rule that keeps a varying number of frames "
                         f"per row; use top-k or uniform rules ({', '.join(n for n, r in RULES.items() if r.batched)})")
    device = next(agent.parameters()).device if agent is not None else torch.device("cpu")
    outcomes: list[Outcome] = []
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        feats, text = batch["features"], batch["text"]
        samples = list(batch["samples"])
        num_t = feats.shape[1]
        picks = {}
        for m, method in chosen.items():
            # a dataset built for an agent that ignores options carries none (FeatureDataset(options=False))
            options = batch.get("options") if method.needs_agent else None
            options, option_mask = (None, None) if options is None else (options.to(device), batch["option_mask"].to(device))
            scores = method.score(agent, feats.to(device), text.to(device), options, option_mask)   # [B, T] | None
            radius = method.set_radius(agent, text.to(device))                                  # set-aware rules
            picks[m] = method.pick(None if scores is None else scores.cpu(), num_t, k,
                                   None if radius is None else radius.cpu(),
                                   features=feats.float()).expand(len(samples), k)
        rows = [{m: picks[m][b].numpy() for m in chosen} for b in range(len(samples))]          # [B] x {m: [k]}
        outcomes += judge_selections(oracle, samples, rows, list(batch["timestamps"].numpy()), frame_size)
    return {m: metrics_of([o for o in outcomes if o.method == m]) for m in methods}

