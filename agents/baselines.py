"""Selection rules: turn per-candidate scores into k candidate positions (DESIGN.md §6).

Every rule returns ``int64[k']`` *positions into the candidate list*, ascending and unique
(``k' = k`` except for AKS, which may keep fewer when its kept segments are short, as the
original does). The caller maps positions to source frame indices and seconds. Which rule a named method uses is
:mod:`tspo.agents.methods`' registry.
"""

from __future__ import annotations

import torch

from tspo.settings import check_num_frames


def _check_k(num_candidates: int, k: int) -> None:
    check_num_frames(k, "k")
    if num_candidates <= 0:
        raise ValueError("there are no candidate frames to select from (T = 0)")
    if k > num_candidates:
        raise ValueError(
            f"k={k} is larger than the number of candidates T={num_candidates}; pass k <= T "
            "(TSPOSelector clips k with a warning)"
        )


def _as_scores(scores: torch.Tensor) -> torch.Tensor:
    scores = torch.as_tensor(scores)
    if scores.dim() != 1:
        raise ValueError(f"scores must be a 1-D tensor [T], got shape {tuple(scores.shape)}")
    if not torch.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf; check the encoder features and the agent weights")
    return scores.detach().float().cpu()


def select_uniform(num_candidates: int, k: int) -> torch.Tensor:
    """k evenly spaced positions, first and last candidate included: T, k -> int64[k]."""
    _check_k(num_candidates, k)
    return torch.linspace(0, num_candidates - 1, k, dtype=torch.float64).floor().long()


def select_topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The k highest scores of each row (ties: earlier position first), sorted by time:
    [..., T] -> int64[..., k], on the scores' device.

    One rule for inference, held-out checks and the training policy's greedy pick: a stable
    descending sort makes ties (repeated frames of a still shot) deterministic, which
    ``torch.topk`` is not.
    """
    scores = torch.as_tensor(scores)
    if scores.dim() < 1:
        raise ValueError(f"scores must be [T] or [..., T], got shape {tuple(scores.shape)}")
    if not torch.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf; check the encoder features and the agent weights")
    _check_k(scores.shape[-1], k)
    order = torch.sort(scores.detach(), dim=-1, descending=True, stable=True).indices[..., :k]
    return order.sort(dim=-1).values


def select_bin_max(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Split the candidates into k equal bins and take each bin's best: [T] -> int64[k]."""
    scores = _as_scores(scores)
    num = scores.numel()
    _check_k(num, k)
    bounds = torch.div(torch.arange(k + 1) * num, k, rounding_mode="floor")
    starts, ends = bounds[:-1], bounds[1:]
    width = int((ends - starts).max())
    pos = starts[:, None] + torch.arange(width)[None, :]  # [k, width]
    inside = pos < ends[:, None]
    grid = torch.where(inside, scores[pos.clamp(max=num - 1)], torch.tensor(float("-inf")))
    return starts + grid.argmax(dim=1)


def select_aks(
    scores: torch.Tensor, k: int, t1: float = 0.2, t2: float = -100.0, max_depth: int = 3
) -> torch.Tensor:
    """Adaptive Keyframe Sampling (Tang et al., CVPR 2025) as used in TSPO's evaluation: [T] -> int64[<=k].

    Scores are min-max normalised. A segment at depth d is *kept* when the mean of its top-k
    scores stands out from its mean by more than ``t1`` (and its std exceeds ``t2``), or when
    ``d == max_depth``; otherwise it is split into two halves. A kept segment at depth d
    contributes its top ``int(k / 2**d)`` frames. If T <= k, all candidates are returned.
    """
    scores = _as_scores(scores)
    num = scores.numel()
    check_num_frames(k, "k")
    if max_depth < 0:
        raise ValueError(f"max_depth must be >= 0, got {max_depth}")
    if num <= k:
        return torch.arange(num)
    span = scores.max() - scores.min()
    norm = (scores - scores.min()) / span if span > 0 else torch.zeros_like(scores)

    kept: list[tuple[int, int, int]] = []  # (start, end, depth): a handful of segments, not frames
    frontier = [(0, num, 0)]
    while frontier:
        nxt = []
        for start, end, depth in frontier:
            seg = norm[start:end]
            top_mean = seg.topk(min(k, seg.numel())).values.mean()
            # np.std in the original: population std.
            stands_out = float(top_mean - seg.mean()) > t1 and float(seg.std(unbiased=False)) > t2
            if stands_out or depth >= max_depth or end - start < 2:
                kept.append((start, end, depth))
            else:
                mid = start + (end - start) // 2
                nxt += [(start, mid, depth + 1), (mid, end, depth + 1)]
        frontier = nxt

    picks = []
    for start, end, depth in kept:
        budget = min(int(k / 2**depth), end - start)
        if budget > 0:
            seg = norm[start:end]
            picks.append(start + torch.sort(seg, descending=True, stable=True).indices[:budget])
    if not picks:
        return select_topk(norm, k)
    return torch.cat(picks).unique(sorted=True)
