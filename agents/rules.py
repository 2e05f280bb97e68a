"""Selection rules: turn per-candidate scores into k candidate positions.

Every rule returns ``int64[k']`` *positions into the candidate list*, ascending and unique
(``k' = k`` except for AKS, which may keep fewer when its kept segments are short, as the
original does). The caller maps positions to source frame indices and seconds. Which rule a named method uses is
:mod:`tspo.agents.methods`' registry.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tspo.settings import DEFAULT_CUT_DISTANCE, check_cut_distance, check_num_frames


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
    """Each candidate joins the nearest of k evenly spaced anchors; each bin gives its best: [T] -> int64[k].

    As in the TSPO reference: anchors sit at candidate positions ``round(i * (T - 1) / (k - 1))``
    (Python/torch round-half-to-even; one anchor at 0 when k == 1), so the two end bins are half as
    wide as the inner ones. A candidate equally far from two anchors joins the earlier one, and a
    bin's tied maxima resolve to its earliest candidate.
    """
    scores = _as_scores(scores)
    num = scores.numel()
    _check_k(num, k)
    step = (num - 1) / (k - 1) if k > 1 else 0.0
    anchors = torch.round(torch.arange(k, dtype=torch.float64) * step).long()  # [k], distinct when k <= T
    dist = (torch.arange(num)[:, None] - anchors[None, :]).abs()  # [T, k]
    owner = dist.argmin(dim=1)  # argmin keeps the first (earlier) anchor on a tie
    member = owner[None, :] == torch.arange(k)[:, None]  # [k, T]
    grid = torch.where(member, scores[None, :], torch.tensor(float("-inf")))
    return grid.argmax(dim=1)  # first maximum of each bin; bins are contiguous, so already ascending


def select_aks(
    scores: torch.Tensor, k: int, t1: float = 0.2, t2: float = -100.0, max_depth: int = 3
) -> torch.Tensor:
    """Adaptive Keyframe Sampling (Tang et al., CVPR 2025) as used in TSPO's evaluation: [T] -> int64[<=k].

    Scores are min-max normalised. A segment at depth d is *kept* when the mean of its top-k
    scores stands out from its mean by more than ``t1`` (and its population std exceeds ``t2``),
    or when ``d == max_depth``; otherwise it is split into two halves (the first gets the floor).
    A kept segment at depth d contributes its top ``int(k / 2**d)`` frames (ties: earlier first).
    Only when T < k are all candidates returned: at T == k the recursion runs, as in the AKS code.

    Defaults are the TSPO evaluation's (t1 = 0.2, max_depth = 3); the AKS code's own defaults are
    t1 = 0.8, max_depth = 5, chosen for 64 frames out of a long video.
    """
    scores = _as_scores(scores)
    num = scores.numel()
    check_num_frames(k, "k")
    if max_depth < 0:
        raise ValueError(f"max_depth must be >= 0, got {max_depth}")
    if num < k:
        return torch.arange(num)
    span = scores.max() - scores.min()
    norm = (scores - scores.min()) / span if span > 0 else torch.zeros_like(scores)

    kept: list[tuple[int, int, int]] = []  # (start, end, depth): at most 2**max_depth segments, not frames
    frontier = [(0, num, 0)]
    while frontier:
        nxt = []
        for start, end, depth in frontier:
            if end <= start:  # an empty half of a 1-frame segment: the original keeps it, it adds nothing
                continue
            seg = norm[start:end]
            top_mean = seg.topk(min(k, seg.numel())).values.mean()
            stands_out = float(top_mean - seg.mean()) > t1 and float(seg.std(unbiased=False)) > t2
            if stands_out or depth >= max_depth:
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


# The fixed radius of the ``nms`` rule (``clip+nms``), and the radius the filter agent's set head
# switches on: frames (1 fps grid: the question world's events last 3-6 s).
DEFAULT_NMS_RADIUS = 3


def select_nms(scores: torch.Tensor, k: int, radius: int | torch.Tensor,
               shots: torch.Tensor | None = None) -> torch.Tensor:
    """Temporal non-max suppression: [T] | [B, T] scores, radius (frames) -> int64[k] | [B, k], ascending.

    Greedy, as in detection: take the best candidate, suppress every candidate within ``radius``
    frames of it, repeat; once every candidate is taken or suppressed, the rest of the k picks are the
    best candidates not taken yet. So picks spread over distinct events before any event gets a second
    one. Ties: the earlier candidate first. ``radius``: an int for every row, or int64[B] (one per row,
    e.g. the filter agent's question-dependent :meth:`~tspo.agents.filter.FilterAgent.set_radius`);
    0 is plain top-k. The loop runs over the k picks, each step vectorised over rows and frames.

    A fixed radius is a baseline (``clip+nms``): it breaks questions that need several picks inside
    one event (the question world's motion kind needs two; fixed-radius NMS drops its coverage from
    1.00 to ~0.3-0.6), which is why the trained filter agent chooses the radius per question.

    ``shots`` int64[T] | [B, T] (the ``shot`` rule; :func:`shot_ids`): a pick's window stops at its shot's
    cuts, so it never suppresses the start of the next appearance (0: plain top-k, e.g. the set head's
    "keep" for motion). That is what counting needs when the counted appearances follow one another: a
    plain window wide enough to keep a long appearance from taking two picks also covers the start of the
    next one. Suppressing the pick's *whole* shot instead (the rule's first form) merged appearances that
    look alike back to back, with no cut between them: count 0.92-0.93 on 900 held-out needles per set
    (``benchmarks/RESULTS.md``, ``filter_goal_whole_shot``) against 0.97-1.00 for the clipped window on
    900 others (``filter_goal_shot_clip``).
    """
    scores = torch.as_tensor(scores)
    if scores.dim() not in (1, 2):
        raise ValueError(f"scores must be [T] or [B, T], got shape {tuple(scores.shape)}")
    if not torch.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf; check the encoder features and the agent weights")
    _check_k(scores.shape[-1], k)
    rows = scores.detach()[None] if scores.dim() == 1 else scores.detach()
    bsz, num = rows.shape
    radius_t = torch.as_tensor(radius, device=rows.device)
    if radius_t.is_floating_point() or radius_t.dtype == torch.bool or radius_t.dim() > 1 or \
            (radius_t.dim() == 1 and radius_t.numel() != bsz):
        raise ValueError(f"radius must be an int (frames) or int64[B] with B = {bsz} rows, got {radius!r}")
    if (radius_t < 0).any():
        raise ValueError(f"radius must be >= 0 frames (0 = plain top-k), got {radius!r}")
    radius_t = radius_t.long().expand(bsz)[:, None]                                  # [B, 1]
    if shots is not None:
        shots = torch.as_tensor(shots, device=rows.device)
        if shots.is_floating_point() or shots.dtype == torch.bool or shots.shape[-1:] != (num,) or \
                shots.dim() not in (1, 2) or (shots.dim() == 2 and shots.shape[0] != bsz):
            raise ValueError(f"shots must be int64[T] or [B, T] shot ids matching the scores {tuple(scores.shape)}, "
                             f"got {tuple(shots.shape)} {shots.dtype}; make them with shot_ids(features)")
        shots = shots.long().expand(bsz, num)
    order = torch.sort(rows, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(num, device=rows.device).expand(bsz, num))
    merit = num - rank                                                              # unique, higher = better
    frames = torch.arange(num, device=rows.device)[None]                           # [1, T]
    free = torch.ones(bsz, num, dtype=torch.bool, device=rows.device)               # neither taken nor suppressed
    taken = torch.zeros_like(free)
    for _ in range(k):  # k picks, not frames
        # a pick suppresses itself (distance 0 <= radius), so `free` never holds a taken candidate
        pool = torch.where(free.any(-1, keepdim=True), free, ~taken)                # suppressed all: fill
        pick = torch.where(pool, merit, torch.zeros_like(merit)).argmax(-1, keepdim=True)  # [B, 1]
        taken.scatter_(-1, pick, True)
        near = (frames - pick).abs() <= radius_t
        if shots is not None:  # the window stops at the pick's shot cuts; a pick is in its own shot
            near &= shots == shots.gather(-1, pick)
        free &= ~near
    picks = taken.nonzero()[:, 1].reshape(bsz, k)                                  # row-major: ascending
    return picks[0] if scores.dim() == 1 else picks


def shot_ids(features: torch.Tensor, cut_distance: float | None = None) -> torch.Tensor:
    """Shots of a candidate sequence: features [..., T, D] (time-ordered) -> int64[..., T] shot ids.

    A new shot starts at candidate t when ``1 - cos(F_{t-1}, F_t) > cut_distance``; ids count the cuts
    before each candidate (0, 0, 1, 1, 1, 2, ...). Unitless: the distance is the features' cosine.
    ``cut_distance`` None: :data:`tspo.settings.DEFAULT_CUT_DISTANCE` (the one owner of the default).
    """
    cut = check_cut_distance(cut_distance)
    cut = DEFAULT_CUT_DISTANCE if cut is None else cut
    features = torch.as_tensor(features)
    if features.dim() < 2 or features.shape[-2] < 1:
        raise ValueError(f"features must be [..., T, D] with T >= 1, got shape {tuple(features.shape)}")
    distance = 1.0 - F.cosine_similarity(features[..., 1:, :].float(), features[..., :-1, :].float(), dim=-1)
    cuts = F.pad((distance > cut).long(), (1, 0))
    return cuts.cumsum(-1)
