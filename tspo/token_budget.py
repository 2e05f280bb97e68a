"""Visual tokens a video LLM spends on the frames it is handed, and the frame size that fits a budget.

The one place for the models' token rules (tested token for token against the transformers
processors, ``tests/test_token_budget.py``):

- **Qwen2-VL / Qwen2.5-VL** (``Qwen2VLVideoProcessor``): each frame is resized by ``smart_resize``
  to a multiple of ``patch_size * merge_size`` (28 px) per side with its area in
  ``[min_pixels, max_pixels]`` (with ``cap_pixels_per_frame``, ``max_pixels`` is also bounded by an
  even share of ``max_video_tokens``); frames are grouped in temporal patches of 2 (an odd count is
  padded with the last frame). Tokens = ``ceil(n / 2) * (h / 28) * (w / 28)``.
- **LLaVA-OneVision / LLaVA-Video** (``LlavaOnevisionProcessor``): every frame is resized to the
  vision tower's square input (384 px: 27 x 27 patches of 14 px) and its feature map pooled 2 x 2
  (ceil), plus one newline token per video: ``n * ceil(27 / 2)**2 + 1`` = ``196 n + 1``. The frame
  size does not change the count, so a budget buys a number of frames, not a resolution.

A budget is usually "what k full-size frames cost" (:func:`video_tokens` of k frames at the
selection's ``frame_size``); :func:`plan_frames` then finds the most frames, and the largest frame
size for them, that stay within it. Frame sizes are short sides in pixels of *whole* frames (aspect
kept, never upscaled), exactly as :func:`tspo.video.read_whole_frames` hands them on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tspo.errors import TSPOError
from tspo.video import whole_frame_shape

FAMILIES = ("qwen", "llava")


class TokenBudgetError(TSPOError, ValueError):
    """A token budget, model name or frame size that cannot give a plan."""


@dataclass(frozen=True)
class TokenRule:
    """How one video LLM turns frames into visual tokens (fields as its processor names them).

    ``family``: ``"qwen"`` (resize to the merged-patch grid) or ``"llava"`` (fixed square input,
    pooled). Qwen: ``patch_size``, ``merge_size``, ``temporal_patch_size``, ``min_pixels`` /
    ``max_pixels`` (area bounds, px), ``cap_pixels_per_frame`` / ``max_video_tokens``. LLaVA:
    ``image_size`` (px, the square every frame is resized to) and ``patch_size``.
    """

    name: str
    family: str
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    cap_pixels_per_frame: bool = False
    max_video_tokens: int = 128000
    image_size: int = 384

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise TokenBudgetError(f"TokenRule family must be one of {FAMILIES}, got {self.family!r}")

    @property
    def factor(self) -> int:
        """Qwen: the side of one merged patch (px); frame sides are multiples of it."""
        return self.patch_size * self.merge_size


# The released processors' defaults (transformers' Qwen2VLVideoProcessor, used by both Qwen
# families; LlavaOnevisionVideoProcessor at 384 px with SigLIP's 14-px patches, used by LLaVA-Video too).
TOKEN_RULES: dict[str, TokenRule] = {
    r.name: r for r in (
        TokenRule("qwen2-vl", "qwen"),
        TokenRule("qwen2.5-vl", "qwen"),
        TokenRule("llava-onevision", "llava"),
        TokenRule("llava-video", "llava"),
    )
}
TOKEN_MODELS = tuple(TOKEN_RULES)
DEFAULT_TOKEN_MODEL = "qwen2-vl"


def token_rule(model: str | TokenRule | Any) -> TokenRule:
    """The :class:`TokenRule` of ``model``: a :data:`TOKEN_MODELS` name, a rule, or a transformers
    processor (Qwen2-VL / Qwen2.5-VL / LLaVA-OneVision, read from its own settings)."""
    if isinstance(model, TokenRule):
        return model
    if isinstance(model, str):
        if model not in TOKEN_RULES:
            raise TokenBudgetError(f"unknown model {model!r} for a token budget; choose one of {', '.join(TOKEN_MODELS)} "
                                   "or pass the model's transformers processor")
        return TOKEN_RULES[model]
    return rule_from_processor(model)


def rule_from_processor(processor: Any) -> TokenRule:
    """The token rule a transformers processor applies (its own sizes, not the defaults)."""
    vp = getattr(processor, "video_processor", None)
    name = type(processor).__name__
    if vp is not None and hasattr(vp, "temporal_patch_size") and hasattr(vp, "merge_size"):
        size = getattr(vp, "size", None) or {}
        get = size.get if isinstance(size, dict) else (lambda k, d=None: getattr(size, k, d))
        min_px, max_px = get("shortest_edge"), get("longest_edge")
        if min_px is None or max_px is None:
            raise TokenBudgetError(f"{name}: its video processor's size has no shortest_edge/longest_edge (area "
                                   f"bounds); got {size!r}")
        return TokenRule(name, "qwen", int(vp.patch_size), int(vp.merge_size), int(vp.temporal_patch_size),
                         int(min_px), int(max_px), bool(getattr(vp, "cap_pixels_per_frame", False)),
                         int(getattr(vp, "max_video_tokens", 128000)))
    if vp is not None and getattr(processor, "num_image_tokens", None):
        side = math.isqrt(int(processor.num_image_tokens))
        return TokenRule(name, "llava", patch_size=1, image_size=side)   # side patches of "1 px": same count
    raise TokenBudgetError(f"cannot read a token rule from {name}; pass a Qwen2-VL / Qwen2.5-VL / LLaVA-OneVision "
                           f"processor or one of {', '.join(TOKEN_MODELS)}")


def smart_resize(height: np.ndarray | int, width: np.ndarray | int, factor: int, min_pixels: int,
                 max_pixels: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Qwen's resize, elementwise over arrays of frame sizes (px): -> (height, width) multiples of
    ``factor`` with the area in ``[min_pixels, max_pixels]``, aspect kept as closely as the grid allows."""
    h = np.asarray(height, dtype=np.float64)
    w = np.asarray(width, dtype=np.float64)
    max_pixels = np.asarray(max_pixels, dtype=np.float64)
    h_bar, w_bar = np.round(h / factor) * factor, np.round(w / factor) * factor
    big = h_bar * w_bar > max_pixels
    small = ~big & (h_bar * w_bar < min_pixels)
    beta_big = np.sqrt(h * w / max_pixels)
    beta_small = np.sqrt(min_pixels / (h * w))
    h_big = np.maximum(factor, np.floor(h / beta_big / factor) * factor)
    w_big = np.maximum(factor, np.floor(w / beta_big / factor) * factor)
    h_small, w_small = np.ceil(h * beta_small / factor) * factor, np.ceil(w * beta_small / factor) * factor
    h_out = np.where(big, h_big, np.where(small, h_small, h_bar))
    w_out = np.where(big, w_big, np.where(small, w_small, w_bar))
    return h_out.astype(np.int64), w_out.astype(np.int64)


def video_tokens(model: str | TokenRule | Any, num_frames: np.ndarray | int, height: np.ndarray | int,
                 width: np.ndarray | int) -> np.ndarray | int:
    """Visual tokens of ``num_frames`` frames of ``height`` x ``width`` px handed to ``model`` as one
    video (elementwise over arrays; an int for scalar inputs)."""
    rule = token_rule(model)
    n = np.asarray(num_frames, dtype=np.int64)
    if (n < 1).any():
        raise TokenBudgetError(f"num_frames must be >= 1, got {num_frames!r}")
    if rule.family == "llava":
        pooled = math.ceil(rule.image_size // rule.patch_size / 2) ** 2
        # the frame size does not enter: broadcast only so that arrays of sizes give arrays of counts
        out = np.broadcast_to(n * pooled + 1, np.broadcast_shapes(n.shape, np.shape(height), np.shape(width)))
    else:
        h, w = smart_resize(height, width, rule.factor, rule.min_pixels, _max_pixels(rule, n))
        grid_t = -(-n // rule.temporal_patch_size)
        out = grid_t * (h // rule.patch_size) * (w // rule.patch_size) // rule.merge_size ** 2
    out = np.asarray(out, dtype=np.int64)
    return int(out) if out.ndim == 0 else out


def frames_budget(model: str | TokenRule | Any, num_frames: int, frame_size: int,
                  source_hw: tuple[int, int]) -> int:
    """Tokens of ``num_frames`` whole frames at short side ``frame_size`` (px) of a video of
    ``source_hw`` = (height, width) px: the budget "k full-size frames" stands for."""
    h, w = whole_frame_shape(source_hw[0], source_hw[1], frame_size)
    return int(video_tokens(model, num_frames, h, w))


@dataclass(frozen=True)
class FramePlan:
    """How many frames at what size fit a budget. ``frame_size``: short side (px) to read them at;
    ``height`` x ``width``: the whole frames that size gives; ``seen_hw``: the size the model's
    processor turns them into (Qwen: the 28-px grid; LLaVA: its square input); ``tokens``: what they
    cost (<= ``budget``)."""

    num_frames: int
    frame_size: int
    height: int
    width: int
    tokens: int
    budget: int
    model: str
    seen_hw: tuple[int, int]


def plan_frames(model: str | TokenRule | Any, budget: int, source_hw: tuple[int, int], max_frame_size: int,
                max_frames: int, min_frame_size: int = 1, min_frames: int = 1) -> FramePlan:
    """The most frames (``min_frames`` .. ``max_frames``) whose whole frames, at the largest short
    side in ``[min_frame_size, max_frame_size]`` px that keeps them within ``budget`` tokens, fit.

    ``source_hw``: the video's (height, width) px. Frames are never upscaled, so a short side above
    the source's is the source's. Raises :class:`TokenBudgetError` when not even ``min_frames``
    frames at ``min_frame_size`` fit."""
    rule = token_rule(model)
    for name, v in (("budget", budget), ("max_frame_size", max_frame_size), ("max_frames", max_frames),
                    ("min_frame_size", min_frame_size), ("min_frames", min_frames)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise TokenBudgetError(f"{name} must be a positive int, got {v!r}")
    if min_frame_size > max_frame_size or min_frames > max_frames:
        raise TokenBudgetError(f"need min_frame_size <= max_frame_size and min_frames <= max_frames, got "
                               f"{min_frame_size}..{max_frame_size} px and {min_frames}..{max_frames} frames")
    src_short = min(source_hw)
    sizes = np.arange(min(min_frame_size, src_short), min(max_frame_size, src_short) + 1)      # [S] short sides
    hw = np.stack(whole_frame_shape(source_hw[0], source_hw[1], sizes), axis=-1)                 # [S, 2]
    counts = np.arange(min_frames, max_frames + 1)                                               # [N]
    tokens = video_tokens(rule, counts[:, None], hw[None, :, 0], hw[None, :, 1])                 # [N, S]
    fits = tokens <= budget
    ok_n = fits.any(axis=1)
    if not ok_n.any():
        raise TokenBudgetError(
            f"{min_frames} frame(s) at {sizes[0]} px cost {int(tokens[0, 0])} {rule.name} tokens, over the budget of "
            f"{budget}; raise the token budget or lower min_frames / min_frame_size")
    i = int(np.flatnonzero(ok_n)[-1])
    j = int(np.flatnonzero(fits[i])[-1])
    return FramePlan(int(counts[i]), int(sizes[j]), int(hw[j, 0]), int(hw[j, 1]), int(tokens[i, j]), int(budget),
                     rule.name, seen_size(rule, int(counts[i]), int(hw[j, 0]), int(hw[j, 1])))


def seen_size(model: str | TokenRule | Any, num_frames: int, height: int, width: int) -> tuple[int, int]:
    """(height, width) px the model's processor resizes ``num_frames`` frames of ``height`` x ``width`` to."""
    rule = token_rule(model)
    if rule.family == "llava":
        return rule.image_size, rule.image_size
    h, w = smart_resize(height, width, rule.factor, rule.min_pixels, _max_pixels(rule, np.asarray(num_frames)))
    return int(h), int(w)


def _max_pixels(rule: TokenRule, n: np.ndarray) -> np.ndarray | int:
    """Qwen's per-frame area cap for ``n`` frames: ``max_pixels``, and with ``cap_pixels_per_frame`` an
    even share of ``max_video_tokens`` (90 %) per temporal patch, floored at 1.05 ``min_pixels``."""
    if not rule.cap_pixels_per_frame:
        return rule.max_pixels
    total = int(rule.max_video_tokens * rule.factor * rule.factor * 0.9)
    return np.maximum(np.minimum(rule.max_pixels, total * rule.temporal_patch_size // n), int(rule.min_pixels * 1.05))


def with_rule(model: str | TokenRule | Any, **changes: Any) -> TokenRule:
    """A copy of ``model``'s rule with some fields changed (e.g. ``min_pixels`` for a processor set up so)."""
    return replace(token_rule(model), **changes)


__all__ = ["DEFAULT_TOKEN_MODEL", "TOKEN_MODELS", "TOKEN_RULES", "FramePlan", "TokenBudgetError", "TokenRule",
           "frames_budget", "plan_frames", "rule_from_processor", "seen_size", "smart_resize", "token_rule", "video_tokens",
           "with_rule"]
