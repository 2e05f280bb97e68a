"""Held-out check of a selection rule: fraction of picks in the target, and oracle accuracy.

Used by the learning check (tests and ``benchmarks/bench_learning.py``): the trained agent's
greedy top-k (as at inference, no noise) against the untrained agent, uniform sampling and CLIP
top-k, on samples never seen in training, answered by the same frozen oracle.
"""

from __future__ import annotations

import torch

from tspo.agents import METHODS, RULES, get_method
from tspo.settings import DEFAULT_FRAME_SIZE
from tspo.training.datamodule import FeatureDataset, collate
from tspo.training.rollout import ask_oracle, picks_in_target

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
    sums = {m: {"inside": 0.0, "needles": 0, "correct": 0.0, "answered": 0, "failures": 0, "unparsed": 0}
            for m in methods}
    device = next(agent.parameters()).device if agent is not None else torch.device("cpu")
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        feats, text = batch["features"], batch["text"]
        samples = list(batch["samples"])
        num_t = feats.shape[1]
        for m, method in chosen.items():
            scores = method.score(agent, feats.to(device), text.to(device))                     # [B, T] | None
            idx = method.pick(None if scores is None else scores.cpu(), num_t, k)              # [B, k]
            if idx.dim() == 1:                                                                  # uniform on no scores
                idx = idx.expand(len(samples), k)
            idx = idx[:, None, :]                                                               # [B, 1, k]
            _, rewards = ask_oracle(oracle, samples, idx, batch["timestamps"], frame_size)
            needle = torch.tensor([s.kind == "needle" for s in samples])
            inside = picks_in_target(batch["target_mask"], idx)
            acc = sums[m]
            acc["inside"] += float(inside[needle].sum())
            acc["needles"] += int(needle.sum())
            acc["correct"] += float(rewards.accuracy[rewards.valid].sum())
            acc["answered"] += int(rewards.valid.sum())
            acc["failures"] += rewards.failures
            acc["unparsed"] += rewards.num_unparsed
    return {m: {"target_fraction": s["inside"] / s["needles"] if s["needles"] else None,
                "accuracy": s["correct"] / max(s["answered"], 1), "failures": s["failures"],
                "unparsed": s["unparsed"], "n": len(dataset)}
            for m, s in sums.items()}
