"""Candidate features of a sample; virtual (needle) samples composed in feature space.

A needle's composed timeline reuses its sources' own candidates: composed candidate ``t_i = i/fps``
inside segment ``s`` (offset ``o_s``) shows source time ``start_s + t_i - o_s``, a point of the
source's own grid when cuts lie on the ``1/fps`` grid (the composer guarantees it). So each
source is encoded (and cached) once at ``fps`` without a cap, and any number of 10–60 minute
needles built from it cost a row gather: ``F[i] = F_source(s_i)[j_i]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from tspo.settings import DEFAULT_FPS

from .manifest import Sample

_GRID_TOL = 1e-6


class CompositionError(ValueError):
    """A virtual video whose cuts are off the candidate grid, or that runs past a source."""


def check_grid(segments: Sequence[Mapping], fps: float) -> None:
    """Raise :class:`CompositionError` unless every cut is a whole multiple of ``1/fps`` seconds."""
    for i, seg in enumerate(segments):
        for key in ("start_s", "end_s"):
            steps = float(seg[key]) * fps
            if abs(steps - round(steps)) > 1e-6:
                raise CompositionError(
                    f"segment {i} {key}={seg[key]} is not a multiple of 1/fps = {1 / fps} s, so its candidates "
                    "are not the source's; re-compose with cuts on the grid (tspo synth needle does) or "
                    "encode the decoded candidates instead (tspo.cache.video_features(segments, ...))")


def compose_features(segments: Sequence[Mapping], source_features: Mapping[str, object], fps: float = DEFAULT_FPS,
                     max_candidates: int | None = None):
    """Features of a virtual video from per-source ``VideoFeatures`` (full grid at ``fps``, no cap).

    Returns ``VideoFeatures`` with ``T`` rows on the composed timeline (``candidate_times`` of the
    total length at ``fps``, capped at ``max_candidates``); ``frame_indices`` are source frames.
    """
    from tspo.cache import VideoFeatures
    from tspo.video import candidate_times

    check_grid(segments, fps)
    lengths = np.array([float(s["end_s"]) - float(s["start_s"]) for s in segments])
    offsets = np.concatenate([[0.0], np.cumsum(lengths)])
    duration = float(offsets[-1])
    times = candidate_times(duration, fps, max_candidates)                        # [T]
    seg = np.clip(np.searchsorted(offsets, times + _GRID_TOL, side="right") - 1, 0, len(segments) - 1)
    starts = np.array([float(s["start_s"]) for s in segments])
    src_times = starts[seg] + (times - offsets[seg])                              # [T] source seconds
    sources = [str(s["source"]) for s in segments]
    first = source_features[sources[0]]
    feats = torch.empty(len(times), first.features.shape[1], dtype=first.features.dtype)
    frame_idx = np.empty(len(times), dtype=np.int64)
    seg_source = np.array(sources, dtype=object)[seg]
    for src in dict.fromkeys(sources):                                            # one gather per source
        rows_here = np.flatnonzero(seg_source == src)
        vf = source_features[src]
        # the source's candidate shown at that source time (its last grid point <= t)
        rows = np.searchsorted(vf.timestamps_s, src_times[rows_here] + _GRID_TOL, side="right") - 1
        bad = (rows < 0) | (src_times[rows_here] >= vf.duration_s + _GRID_TOL)
        if bad.any():
            t = float(src_times[rows_here][bad][0])
            raise CompositionError(f"a segment reads {src} at {t:.3f} s, past its end ({vf.duration_s:.3f} s); "
                                   "cut segments inside their sources")
        feats[torch.from_numpy(rows_here)] = vf.features[torch.from_numpy(rows)]
        frame_idx[rows_here] = vf.frame_indices[rows]
    return VideoFeatures(feats, times, frame_idx, duration)


def sample_features(sample: Sample | str | Sequence[Mapping], encoder, fps: float = DEFAULT_FPS,
                    max_candidates: int | None = None, cache=None):
    """``VideoFeatures`` (float32[T, D]) of a sample's candidates at ``fps``, capped at ``max_candidates``.

    A plain video goes through ``tspo.cache.video_features``; a virtual one is composed from its
    sources' cached full-grid features (each source decoded and encoded at most once per cache).
    """
    from tspo.cache import video_features

    video = sample.video if isinstance(sample, Sample) else sample
    if isinstance(video, str):
        return video_features(video, encoder, fps, max_candidates, cache)
    check_grid(video, fps)
    per_source = {src: video_features(src, encoder, fps, None, cache)
                  for src in dict.fromkeys(str(s["source"]) for s in video)}
    return compose_features(video, per_source, fps, max_candidates)
