"""Coarse-to-fine ("zoom") frame selection for hour-long videos with second-long evidence.

The single-stage selector scores ``T`` uniformly spaced candidates; in a 60-minute video 128 of
them are 28 s apart, so a 3-7 s event is usually never offered to the agent, while encoding
every second costs 3,600 encoder forwards. Zoom (after Zoom-Zero's coarse-to-fine temporal
zoom-in and ReCrossVLLM's coarse-to-fine grounding) spends the encoder where the agent looks:

1. **coarse**: ``coarse_candidates`` uniform grid points (on the fine grid, so none is encoded
   twice) are encoded and scored;
2. **spans**: the ``num_spans`` best coarse candidates each open a span of ``span_s`` seconds
   (default: one coarse step on each side); a candidate within half a span of a better one opens
   none, and a frame inside two spans is encoded once;
3. **fine**: the spans' points of the ``fine_fps`` grid are encoded (coarse points are reused),
   at most ``max_frames`` frames in all per video, the best-ranked span first;
4. **final**: the agent scores every encoded frame as one time-ordered sequence and the method's
   rule picks the final ``k``.

Everything here works on a *feature source* (:class:`FeatureSource`): anything that returns
features at given seconds and counts what it had to encode. :class:`VideoFeatureSource` encodes
frames of a real (or virtual) video on demand through the feature cache; :class:`GridFeatureSource`
reads rows of features computed beforehand (virtual needle videos composed in feature space,
tests), counting the frames a real video would have cost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from tspo.agents import get_method
from tspo.features.cache import VideoFeatures, video_features
from tspo.selection.zoom_config import STRATEGIES, ZoomConfig, ZoomConfigError
from tspo.settings import check_num_frames, clip_num_frames
from tspo.spans import in_spans, span_hits, spans_around
from tspo.video import VideoLike, candidate_times, iter_frames_at, nearest_frames, video_duration

__all__ = ["STRATEGIES", "FeatureSource", "GridFeatureSource", "VideoFeatureSource", "ZoomConfig", "ZoomConfigError",
           "ZoomResult", "choose_spans", "demote_scores", "fine_times", "sample_zoom_source",
           "zoom_select"]

logger = logging.getLogger(__name__)

# Grid points are matched by milliseconds: candidate times are multiples of 1/fps, exact to far
# better than 1 ms, and a float key would split one frame into two.
_MS = 1000.0


class FeatureSource(Protocol):
    """Features of one video at any seconds of its timeline.

    ``duration_s``: length of the timeline. ``frames_encoded``: distinct frames encoded so far
    (a repeated time is never encoded twice).
    """

    duration_s: float
    frames_encoded: int

    def features_at(self, times_s: np.ndarray) -> torch.Tensor:
        """float64[n] seconds -> float32[n, D]."""
        ...


def _ms(times_s: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(times_s, dtype=np.float64) * _MS).astype(np.int64)


class GridFeatureSource:
    """Rows of precomputed features on a grid (e.g. a virtual needle composed at 1 fps).

    ``features_at`` only reads rows whose time is a grid point, and counts each distinct time once
    in ``frames_encoded``: what encoding those frames of a real video would have cost.
    """

    def __init__(self, features: torch.Tensor, timestamps_s: np.ndarray, duration_s: float) -> None:
        times = np.asarray(timestamps_s, dtype=np.float64)
        if features.dim() != 2 or features.shape[0] != times.shape[0]:
            raise ValueError(f"features [T, D] and timestamps_s [T] must agree, got {tuple(features.shape)} and "
                             f"{times.shape}")
        self.features = features
        self._keys = _ms(times)
        if (np.diff(self._keys) <= 0).any():
            raise ValueError("timestamps_s must be strictly ascending")
        self.duration_s = float(duration_s)
        self._seen = np.zeros(len(times), dtype=bool)

    @classmethod
    def from_video_features(cls, vf) -> GridFeatureSource:
        """From a :class:`tspo.features.cache.VideoFeatures` (features, timestamps_s, duration_s)."""
        return cls(vf.features, vf.timestamps_s, vf.duration_s)

    @property
    def frames_encoded(self) -> int:
        return int(self._seen.sum())

    def features_at(self, times_s: np.ndarray) -> torch.Tensor:
        keys = _ms(times_s)
        # Rows carry their frames' presentation times, within half a source frame of the grid point they
        # were sampled for (tspo.video): the nearest row, if that close (50 ms: sources of >= 10 fps).
        rows = nearest_frames(self._keys, keys)
        step = int(np.diff(self._keys).min()) if len(self._keys) > 1 else int(_MS)
        off = np.abs(self._keys[rows] - keys) > min(step // 4, _MS // 20)
        if off.any():
            t = float(np.asarray(times_s)[off][0])
            raise ValueError(f"time {t:.3f} s is not a point of this feature grid; sample the grid at a fps "
                             "that divides the grid's (e.g. fine_fps = the features' fps)")
        self._seen[rows] = True
        return self.features[torch.from_numpy(rows)]


class VideoFeatureSource:
    """Encodes frames of ``video`` at requested seconds on demand, each frame once.

    Encoded rows are kept per timestamp (milliseconds) and, with a ``cache``, stored in one
    cache entry per (video content, encoder, precision, frame size) that grows as more times are
    visited, so a later question about the same video reuses every frame encoded before.
    """

    def __init__(self, video: VideoLike, encoder, cache=None, chunk_size: int = 64) -> None:

        self.video, self.encoder, self.cache, self.chunk_size = video, encoder, cache, chunk_size
        self.duration_s = video_duration(video)
        self.frames_encoded = 0
        self._keys = np.zeros(0, dtype=np.int64)                     # int64[N] ms, ascending
        self._feats = torch.zeros(0, encoder.dim, dtype=torch.float32)  # [N, D]
        self._key = self._cache_key() if cache is not None else None
        if self._key is not None:
            hit = cache.load(self._key)
            if hit is not None:
                self._keys, self._feats = _ms(hit.timestamps_s), hit.features.float()

    def _cache_key(self) -> str:
        # The cache's own key over the video content, re-hashed so that it cannot collide with a
        # grid entry of the same video.
        base = self.cache.key(self.video, self.encoder.spec, 0.0, None, self.encoder.image_size,
                              str(getattr(self.encoder, "dtype", "")))
        return hashlib.sha256(json.dumps({"points": base}).encode()).hexdigest()[:40]

    def features_at(self, times_s: np.ndarray) -> torch.Tensor:

        keys = _ms(times_s)
        missing = np.unique(keys[~np.isin(keys, self._keys)])
        if missing.size:
            new = torch.empty(missing.size, self.encoder.dim, dtype=torch.float32)
            for pos, frames in iter_frames_at(self.video, missing / _MS, self.encoder.image_size, self.chunk_size):
                new[torch.from_numpy(pos)] = self.encoder.encode_frames(frames).float().cpu()
            all_keys = np.concatenate([self._keys, missing])
            order = np.argsort(all_keys, kind="stable")
            self._keys, self._feats = all_keys[order], torch.cat([self._feats, new])[torch.from_numpy(order)]
            self.frames_encoded += int(missing.size)
            self._store()
        return self._feats[torch.from_numpy(np.searchsorted(self._keys, keys))]

    def _store(self) -> None:
        if self._key is None:
            return

        self.cache.store(self._key, VideoFeatures(self._feats, self._keys / _MS, np.full(len(self._keys), -1, np.int64),
                                                  self.duration_s))


@dataclass
class ZoomResult:
    """One zoom selection. ``P`` encoded frames (the pool), ``k`` picks, ``S`` spans."""

    pool_times: np.ndarray  # float64[P] seconds of every frame scored in the final stage, ascending
    pool_scores: np.ndarray  # float32[P] final-stage scores
    positions: np.ndarray  # int64[k] picks, positions into the pool, ascending
    spans_s: np.ndarray  # float64[S, 2] spans visited [start, end), best-ranked first
    coarse_times: np.ndarray  # float64[C]
    coarse_scores: np.ndarray  # float32[C]
    frames_encoded: int  # distinct frames encoded for this selection (coarse + fine)

    @property
    def timestamps(self) -> np.ndarray:
        """float64[k] seconds of the picks."""
        return self.pool_times[self.positions]


ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # features float32[n, D] (time-ordered) -> scores [n]


def demote_scores(scores: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    """Scores [n] with the entries where ``mask`` bool[n] is True moved below every other one (finite
    values, so the top-k rules accept them); their order among themselves is kept."""
    if not mask.any():
        return scores
    low = scores.min() - (scores.max() - scores.min()) - 1.0
    return torch.where(torch.from_numpy(mask), low, scores)


def choose_spans(times_s: np.ndarray, scores: torch.Tensor, num_spans: int, width_s: float, duration_s: float,
                 suppress_s: np.ndarray | None = None) -> np.ndarray:
    """Spans around the best coarse candidates: float64[S, 2] seconds, best-ranked first, S <= num_spans.

    ``times_s`` float64[C], ``scores`` [C]. A span is ``[t - w/2, t + w/2)`` clipped to the video;
    a candidate within half a span of a better-ranked one, or inside ``suppress_s`` (spans already
    inspected), opens none.
    """
    times = np.asarray(times_s, dtype=np.float64)
    blocked = in_spans(times, suppress_s) if suppress_s is not None else np.zeros(len(times), bool)
    order = torch.argsort(torch.as_tensor(scores, dtype=torch.float32), descending=True, stable=True).numpy()
    order = order[~blocked[order]]
    centres = times[order]
    # A candidate is redundant when a better-ranked one already lies within half a span of it:
    # pairwise |dt| < w/2 over the ranked list, looking only at earlier ranks.
    near = np.abs(centres[:, None] - centres[None, :]) < width_s / 2
    redundant = np.tril(near, k=-1).any(axis=1)
    centres = centres[~redundant][:num_spans]
    return spans_around(centres, width_s, duration_s).reshape(-1, 2)


def fine_times(spans_s: np.ndarray, fps: float, duration_s: float, budget: int,
               exclude_s: np.ndarray | None = None) -> np.ndarray:
    """Grid points ``i / fps`` inside the spans, at most ``budget`` of them, best-ranked span first.

    ``spans_s`` float64[S, 2] ranked; ``exclude_s`` float64[n] times already encoded (not counted
    against the budget, not returned). Returns float64[F] ascending.
    """
    spans = np.asarray(spans_s, dtype=np.float64).reshape(-1, 2)
    if spans.shape[0] == 0 or budget <= 0:
        return np.zeros(0, dtype=np.float64)
    grid = candidate_times(duration_s, fps)
    inside = span_hits(grid, spans)                                                     # [G, S]
    rank = np.where(inside, np.arange(spans.shape[0])[None, :], spans.shape[0]).min(axis=1)  # best span per point
    keep = rank < spans.shape[0]
    if exclude_s is not None and len(exclude_s):
        keep &= ~np.isin(_ms(grid), _ms(exclude_s))
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(rank[idx], kind="stable")][:budget]
    return np.sort(grid[idx])


def zoom_select(source: FeatureSource, score_fn: ScoreFn, num_frames: int, config: ZoomConfig | None = None,
                method: str = "tspo", suppress_s: np.ndarray | None = None,
                radius: int | torch.Tensor | None = None, cut_distance: float | None = None) -> ZoomResult:
    """Coarse candidates -> scores -> spans -> fine frames -> scores -> ``num_frames`` picks.

    ``score_fn(features [n, D]) -> scores [n]`` scores a time-ordered sequence (the agent with its
    question, or CLIP similarity). ``method`` names the final rule over the pool's scores
    (``tspo``/``clip``: top-k; ``bin-max``; ``aks``; ``nms``). A selector passes its own method
    (:meth:`~tspo.TSPOSelector.select_zoom_from_source`); here, without one, the rule is top-k.
    ``radius``: a set-aware rule's suppression radius in pool positions (the filter agent's set head;
    None: the rule's default); ``cut_distance``: the shot rule's cut over the pool's features (None: the
    default). ``suppress_s`` float64[M, 2]: spans already inspected (reflection): they
    open no span and their frames are not picked again.
    """
    cfg = config or ZoomConfig()
    rule = get_method(method)
    if not rule.needs_scores:
        raise ZoomConfigError(f"zoom needs scores to choose spans; {method!r} has none: use a scored method "
                              "(tspo, clip, bin-max, aks, tspo+aks)")
    num_frames = check_num_frames(num_frames)
    before = source.frames_encoded
    duration = source.duration_s
    coarse = candidate_times(duration, cfg.fine_fps, cfg.coarse_candidates)
    coarse_scores = torch.as_tensor(score_fn(source.features_at(coarse)), dtype=torch.float32)
    spans = choose_spans(coarse, coarse_scores, cfg.num_spans, cfg.span_width(duration), duration, suppress_s)
    fine = fine_times(spans, cfg.fine_fps, duration, cfg.max_frames - len(coarse), exclude_s=coarse)
    pool = np.union1d(coarse, fine)
    pool_features = torch.as_tensor(source.features_at(pool), dtype=torch.float32)
    pool_scores = torch.as_tensor(score_fn(pool_features), dtype=torch.float32)
    blocked = in_spans(pool, suppress_s) if suppress_s is not None else np.zeros(len(pool), bool)
    k, warning = clip_num_frames(num_frames, len(pool))
    if warning:
        warnings.warn(warning, stacklevel=2)
    positions = rule.pick(demote_scores(pool_scores, blocked), len(pool), k, radius, features=pool_features.cpu(),
                          cut_distance=cut_distance)
    return ZoomResult(pool_times=pool, pool_scores=pool_scores.numpy().astype(np.float32),
                      positions=positions.numpy().astype(np.int64), spans_s=spans, coarse_times=coarse,
                      coarse_scores=coarse_scores.numpy().astype(np.float32),
                      frames_encoded=source.frames_encoded - before)



def sample_zoom_source(sample, selector, config: ZoomConfig | None = None) -> FeatureSource:
    """The feature source of a manifest sample: a virtual (needle) video as rows of its composed
    ``fine_fps`` grid (each source encoded once, through the selector's cache), a file encoded on
    demand (:class:`VideoFeatureSource`)."""

    cfg = config or ZoomConfig()
    if isinstance(sample.video, str):
        return VideoFeatureSource(sample.video, selector.encoder, selector.cache)
    vf = video_features(sample.video, selector.encoder, fps=cfg.fine_fps, max_candidates=None, cache=selector.cache)
    return GridFeatureSource.from_video_features(vf)
