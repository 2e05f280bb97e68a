"""Held-out check of a selection rule: fraction of picks in the target, and oracle accuracy.

Used by the learning check (tests and ``benchmarks/bench_learning.py``): the trained agent's
greedy top-k (as at inference, no noise) against the untrained agent, uniform sampling and CLIP
top-k, on samples never seen in training, answered by the same frozen oracle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tspo.agents import select_topk, select_uniform
from tspo.training.datamodule import FeatureDataset, collate
from tspo.training.rollout import build_queries, gather_times, score_answers

METHODS = ("tspo", "uniform", "clip")


@torch.no_grad()
def heldout_metrics(dataset: FeatureDataset, oracle, k: int, agent=None, methods=METHODS,
                    batch_size: int = 64) -> dict[str, dict[str, float]]:
    """``{method: {"target_fraction", "accuracy", "failures", "unparsed", "n"}}`` over every sample.

    ``target_fraction`` = mean over needle samples of ``#picks in target / k`` (None without needle
    samples); ``accuracy`` = mean R_A over answered queries (an unparsed answer is answered and
    wrong; a failed query is left out and counted in ``failures``). ``agent`` is needed for
    ``"tspo"``. ``tspo`` and ``clip`` take the top-k of their scores (as at inference, no noise)
    for the whole batch at once, ``uniform`` the same evenly spaced positions for every row.
    """
    if "tspo" in methods and agent is None:
        raise ValueError("heldout_metrics: method 'tspo' needs the agent")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"heldout_metrics: unknown methods {unknown}; choose from {', '.join(METHODS)}")
    sums = {m: {"inside": 0.0, "needles": 0, "correct": 0.0, "answered": 0, "failures": 0, "unparsed": 0}
            for m in methods}
    device = next(agent.parameters()).device if agent is not None else torch.device("cpu")
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        feats, text = batch["features"], batch["text"]
        samples = list(batch["samples"])
        num_t = feats.shape[1]
        for m in methods:
            if m == "tspo":
                idx = select_topk(agent(feats.to(device), text.to(device)).float().cpu(), k)     # [B, k]
            elif m == "clip":
                idx = select_topk(F.cosine_similarity(feats, text[:, None, :], dim=-1), k)
            else:
                idx = select_uniform(num_t, k).expand(len(samples), k)
            idx = idx[:, None, :]                                                               # [B, 1, k]
            times = gather_times(batch["timestamps"], idx)
            answers = oracle.answer(build_queries(samples, idx, times))
            rewards = score_answers(samples, answers, times)
            needle = torch.tensor([s.kind == "needle" for s in samples])
            inside = batch["target_mask"].gather(-1, idx[:, 0]).float().mean(-1)
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
