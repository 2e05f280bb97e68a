"""Key clips instead of key frames: clip-level selection under a visual-token budget (after F2C,
"From Frames to Clips: Efficient Key Clip Selection for Long-Form Video Understanding").

Isolated top-k frames lose motion and "what happened next"; a short clip around a cue keeps both.
A video LLM's visual-token budget buys ``k`` frames at full size or more frames at a smaller size
(:func:`tspo.token_budget.plan_frames`); clip selection spends the extra frames on context:

1. **anchors**: the ``k`` moments the method's rule picks from the scores (any scorer: the
   agent's, CLIP similarity; top-k, bin-max, AKS), exactly the frames a frame selection keeps;
2. **clips**: the ``n`` candidates nearest to an anchor (in candidate steps; at equal distance the
   later one, so a clip reaches a step further into what happened next, then the better-ranked
   anchor's), so every group of neighbouring anchors grows evenly into one clip; clips that touch
   merge. The clip length is thus chosen per video: anchors bunched on one event give one long
   clip, anchors spread over many events give many short ones;
3. the chosen candidates, in time order, are the flat frame list; each maximal run of
   consecutive candidates is one clip.

Every anchor is kept, so a clip selection shows every frame the frame selection would (at the
planned size). Everything here is pure and vectorised over candidates and anchors; the selector
(``select_frames(..., unit="clip")``) wires it to videos, scorers and token budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tspo.errors import TSPOError
from tspo.token_budget import DEFAULT_TOKEN_MODEL, TOKEN_MODELS, frames_budget, plan_frames
from tspo.video import video_frame_shape

UNITS = ("frame", "clip")


class ClipConfigError(TSPOError, ValueError):
    """A clip-selection knob with a value that cannot work."""


@dataclass(frozen=True)
class ClipConfig:
    """Knobs of clip selection. ``max_frames``: most frames a budget may buy per video (a smaller
    frame size buys more). ``min_frame_size``: smallest short side (px) frames may shrink to for
    it (None: whatever the model's processor still accepts, e.g. Qwen's ``min_pixels``)."""

    max_frames: int = 32
    min_frame_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_frames", "min_frame_size"):
            v = getattr(self, name)
            if v is None and name == "min_frame_size":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ClipConfigError(f"clip {name} must be a positive int, got {v!r}")


@dataclass
class ClipPicks:
    """Clip selection over ``T`` candidates: ``n`` picks in ``C`` clips."""

    positions: np.ndarray  # int64[n] chosen candidate positions, ascending
    clip_ids: np.ndarray  # int64[n] which clip each pick belongs to (0..C-1, in time order)
    anchors: np.ndarray  # int64[A] anchor positions, best first (A >= C: touching clips merge)
    runs: np.ndarray  # int64[C, 2] first and last candidate position of each clip

    def spans_s(self, times_s: np.ndarray) -> np.ndarray:
        """float64[C, 2]: each clip's first and last frame time (seconds) on the candidate times."""
        times = np.asarray(times_s, dtype=np.float64)
        return np.stack([times[self.runs[:, 0]], times[self.runs[:, 1]]], axis=-1).reshape(-1, 2)


def grow_clips(anchors: np.ndarray, num_candidates: int, num_frames: int) -> np.ndarray:
    """bool[T]: the ``num_frames`` candidates nearest (in candidate steps) to any of ``anchors``
    int64[A] (best first); ties go to the later candidate, then to the better anchor. Clips grow
    evenly around their anchors and merge when they touch; exactly ``min(num_frames, T)`` picks."""
    anchors = np.asarray(anchors, dtype=np.int64)
    if anchors.size == 0:
        raise ValueError("grow_clips needs at least one anchor")
    pos = np.arange(num_candidates, dtype=np.int64)
    offset = pos[None, :] - anchors[:, None]                                 # [A, T]
    # 2|d| - (d > 0): at equal distance the step after the anchor comes before the step before it
    key = 2 * np.abs(offset) - (offset > 0)
    best_anchor = key.argmin(axis=0)                                          # [T] (first = better anchor on ties)
    rank = key.min(axis=0) * anchors.size + best_anchor                       # [T] distance first, anchor rank next
    chosen = np.argsort(rank, kind="stable")[: min(num_frames, num_candidates)]
    mask = np.zeros(num_candidates, dtype=bool)
    mask[chosen] = True
    return mask


def runs_of(mask: np.ndarray) -> np.ndarray:
    """int64[C, 2]: first and last index of every maximal run of True in ``mask`` bool[T]."""
    m = np.asarray(mask, dtype=bool).astype(np.int8)
    edges = np.diff(np.concatenate([[0], m, [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1], axis=-1).astype(np.int64)


def select_clips(anchors: np.ndarray, num_candidates: int, num_frames: int) -> ClipPicks:
    """Clips of ``num_frames`` frames in all grown around ``anchors`` int64[A] (candidate positions,
    best first) among ``num_candidates`` candidates: see the module docstring."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int | np.integer) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
    anchors = np.asarray(anchors, dtype=np.int64).reshape(-1)
    if anchors.size and (anchors.min() < 0 or anchors.max() >= num_candidates):
        raise ValueError(f"anchors must be candidate positions in [0, {num_candidates}), got {anchors.tolist()}")
    mask = grow_clips(anchors, num_candidates, max(int(num_frames), len(np.unique(anchors))))
    positions = np.flatnonzero(mask).astype(np.int64)
    runs = runs_of(mask)
    clip_ids = np.searchsorted(runs[:, 0], positions, side="right") - 1
    return ClipPicks(positions=positions, clip_ids=clip_ids.astype(np.int64), anchors=anchors, runs=runs)





def clips_from_scores(scores, num_anchors: int, num_frames: int, method: str = "tspo", radius=None,
                      features=None, cut_distance: float | None = None) -> ClipPicks:
    """The clip selection of a scored method: its rule picks ``num_anchors`` anchors from ``scores``
    [T] (ranked best first; at most ``num_frames`` of them), grown into ``num_frames`` frames.
    ``method`` names the rule only (the scores are given; a selector passes its own method, here the
    rule is top-k without one); ``radius``: a set-aware rule's suppression radius (the filter agent's
    set head; None: the rule's default); ``features`` [T, D]: the candidates' features, for a rule that
    finds shot cuts in them (``shot``, at ``cut_distance``; None: the default)."""
    # Lazy on purpose: `tspo select` parses its clip arguments with this module before torch loads.
    import torch

    from tspo.agents import get_method

    s = torch.as_tensor(scores, dtype=torch.float32).reshape(-1)
    k = min(int(num_anchors), int(num_frames), s.numel())
    anchors = get_method(method).pick(s, s.numel(), k, radius, features=features,
                                      cut_distance=cut_distance).numpy().astype(np.int64)
    anchors = anchors[np.argsort(-s.numpy()[anchors], kind="stable")]          # best first: ties go to them
    return select_clips(anchors, s.numel(), num_frames)


def plan_for_video(video, num_frames: int, frame_size: int, token_budget: int | None, model,
                   config: ClipConfig | None = None, max_frames: int | None = None):
    """The :class:`tspo.token_budget.FramePlan` of a clip selection on ``video``: ``token_budget``
    tokens of ``model`` (None: what ``num_frames`` whole frames at short side ``frame_size`` px
    cost) spent on as many frames as fit (at most ``config.max_frames`` and ``max_frames``, e.g. the
    candidates there are), at the largest size that keeps them within it."""

    cfg = config or ClipConfig()
    hw = video_frame_shape(video)
    budget = frames_budget(model, num_frames, frame_size, hw) if token_budget is None else token_budget
    cap = cfg.max_frames if max_frames is None else max(1, min(cfg.max_frames, max_frames))
    return plan_frames(model, budget, hw, max_frame_size=frame_size, max_frames=cap,
                       min_frame_size=min(cfg.min_frame_size or 1, frame_size))

def add_clip_arguments(parser) -> None:
    """The ``--clips`` flag and its token budget knobs (``tspo select``)."""

    g = parser.add_argument_group("key clips (--clips)")
    g.add_argument("--clips", action="store_true",
                   help="select clips, not frames: the k picks are anchors grown into clips with the extra frames the "
                        "video LLM's visual-token budget buys at a smaller frame size")
    g.add_argument("--token-budget", type=int, default=None,
                   help="--clips: visual tokens to spend (default: what k frames at --frame-size cost)")
    g.add_argument("--token-model", default=DEFAULT_TOKEN_MODEL, choices=TOKEN_MODELS,
                   help=f"--clips: whose token rule the budget follows (default {DEFAULT_TOKEN_MODEL})")
    g.add_argument("--max-clip-frames", type=int, default=None,
                   help=f"--clips: most frames the budget may buy (default {ClipConfig().max_frames})")


def clip_options_from_args(args) -> dict:
    """``select()`` keyword arguments from :func:`add_clip_arguments` flags; ValueError on bad values."""
    if not args.clips:
        if args.token_budget is not None or args.max_clip_frames is not None:
            raise ValueError("--token-budget / --max-clip-frames apply to clip selection; pass --clips too")
        return {}
    if args.token_budget is not None and (isinstance(args.token_budget, bool) or args.token_budget < 1):
        raise ValueError(f"--token-budget must be a positive number of visual tokens, got {args.token_budget}")
    cfg = ClipConfig() if args.max_clip_frames is None else ClipConfig(max_frames=args.max_clip_frames)
    return {"unit": "clip", "token_budget": args.token_budget, "model": args.token_model, "clips": cfg}


__all__ = ["UNITS", "ClipConfig", "ClipConfigError", "ClipPicks", "add_clip_arguments", "clip_options_from_args",
           "clips_from_scores", "grow_clips", "plan_for_video", "runs_of", "select_clips"]
