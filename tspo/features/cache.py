"""Candidate features of any video: the one owner for inference, training and evaluation.

:func:`video_features` takes a file or a virtual video (a list of ``{source, start_s, end_s}``
segments, e.g. a needle sample's ``video``). A virtual video whose cuts lie on the ``1/fps`` grid is
composed in feature space: composed candidate ``t_i = i/fps`` inside segment ``s`` (offset ``o_s``)
samples source time ``start_s + t_i - o_s``, a point of the source's own grid, so each source is
encoded (and cached) once at ``fps`` without a cap and any number of 10-60 minute needles built from
it cost a row gather ``F[i] = F_source(s_i)[j_i]``. Without a cache, or off the grid, the composed
candidates are decoded and encoded directly (the same frames).

:class:`FeatureCache` is the on-disk store that makes a video decoded and encoded once. Key: (content identity of the video file(s) and segment bounds, encoder spec, fps,
max_candidates, frame size). Entries are ``safetensors`` files written to a temporary name and
``os.replace``-d into place, so concurrent writers (DDP ranks, dataloader workers) never expose
a half-written entry, and a reader sees either nothing or a whole one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tspo.errors import TSPOError
from tspo.progress import progress_bar
from tspo.settings import DEFAULT_FPS
from tspo.video import (
    VideoLike,
    candidate_times,
    file_identity,
    iter_frames_at,
    nearest_frames,
    plan_candidates,
)

logger = logging.getLogger(__name__)
# 2: candidates take the frame nearest their grid time and carry its presentation time (1: the frame
# on screen at the grid time, reported at the grid time).
_FORMAT_VERSION = 2
# A video whose candidates take longer than this to decode and encode shows progress (tspo.progress):
# a 2,400-candidate encode is half a minute on CPU; a short clip's stays silent.
ENCODE_PROGRESS_DELAY_S = 2.0


@dataclass
class VideoFeatures:
    """Encoded candidates of one video: ``T`` rows, seconds on its (composed) timeline."""

    features: torch.Tensor  # float32[T, D]
    timestamps_s: np.ndarray  # float64[T]
    frame_indices: np.ndarray  # int64[T] source frame index of each candidate
    duration_s: float

    def __len__(self) -> int:
        return int(self.features.shape[0])


def default_cache_dir() -> Path:
    """``$TSPO_CACHE`` or ``~/.cache/tspo``, with features under ``features/``."""
    return Path(os.environ.get("TSPO_CACHE", Path.home() / ".cache" / "tspo")) / "features"


class FeatureCache:
    """Content-addressed feature store under ``root`` (default :func:`default_cache_dir`)."""

    def __init__(self, root: str | os.PathLike | None = None, memory_entries: int = 16) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        # Recently used entries stay in memory: a second question about the same video should
        # cost the text encoder and the agent, not a disk read.
        self._memory: OrderedDict[str, VideoFeatures] = OrderedDict()
        self._memory_entries = memory_entries

    def __repr__(self) -> str:
        return f"FeatureCache(root={str(self.root)!r}, hits={self.hits}, misses={self.misses})"

    def key(
        self, video: VideoLike, encoder_spec: str, fps: float, max_candidates: int | None, size: int,
        dtype: str = "torch.float32",
    ) -> str:
        """Hex key of a (video content, encoder and its precision, sampling) combination."""
        if isinstance(video, str | os.PathLike):
            ident: object = file_identity(video)
        elif isinstance(video, Sequence):
            ident = [[file_identity(s["source"]), float(s["start_s"]), float(s["end_s"])] for s in video]
        else:
            raise TypeError(f"video must be a path or a list of segments, got {type(video).__name__}")
        payload = json.dumps(
            {"v": _FORMAT_VERSION, "video": ident, "encoder": encoder_spec, "fps": float(fps),
             "max_candidates": max_candidates, "size": size, "dtype": dtype},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def has(self, key: str) -> bool:
        """Whether a whole entry for ``key`` is on disk (its header and tensor sizes check out), without
        reading the features; a damaged entry counts as missing, so it is computed again."""
        from safetensors import safe_open

        path = self.path(key)
        if not path.is_file():
            return False
        try:
            with safe_open(str(path), framework="pt") as fh:
                return {"features", "timestamps_s", "frame_indices", "duration_s"} <= set(fh.keys())
        except Exception:  # truncated or foreign file
            return False

    def load(self, key: str) -> VideoFeatures | None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            data = load_file(str(path))
        except Exception as err:  # a damaged entry is recomputed, never trusted
            logger.warning("ignoring unreadable feature cache entry %s (%s)", path, err)
            return None
        value = VideoFeatures(
            features=data["features"],
            timestamps_s=data["timestamps_s"].double().numpy(),
            frame_indices=data["frame_indices"].long().numpy(),
            duration_s=float(data["duration_s"].item()),
        )
        self._remember(key, value)
        return value

    def _remember(self, key: str, value: VideoFeatures) -> None:
        if self._memory_entries <= 0:
            return
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_entries:
            self._memory.popitem(last=False)

    def store(self, key: str, value: VideoFeatures) -> Path:
        path = self.path(key)
        tensors = {
            "features": value.features.float().contiguous(),
            "timestamps_s": torch.from_numpy(np.ascontiguousarray(value.timestamps_s, dtype=np.float64)),
            "frame_indices": torch.from_numpy(np.ascontiguousarray(value.frame_indices, dtype=np.int64)),
            "duration_s": torch.tensor([value.duration_s], dtype=torch.float64),
        }
        atomic_write(path, lambda tmp: save_file(tensors, tmp))
        self._remember(key, value)
        return path


def atomic_write(path: Path, write) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then ``os.replace`` it into place: readers
    (other ranks, workers, processes) see nothing or a whole file, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def encode_candidates(
    video: VideoLike, encoder, fps: float = DEFAULT_FPS, max_candidates: int | None = None, chunk_size: int = 64
) -> VideoFeatures:
    """Decode and encode the candidates of ``video`` chunk by chunk (no cache): -> ``[T, D]``.

    Only ``chunk_size`` decoded frames live in memory at once, so an hour of video costs the
    features (T x D floats), not the frames. Progress shows on stderr once the work has taken
    :data:`ENCODE_PROGRESS_DELAY_S`.
    """

    times, _, frame_idx, duration = plan_candidates(video, fps, max_candidates)
    features = torch.empty(len(times), encoder.dim, dtype=torch.float32)
    with progress_bar(total=len(times), desc="encode candidates", unit="frame", delay_s=ENCODE_PROGRESS_DELAY_S) as bar:
        for pos, frames in iter_frames_at(video, times, encoder.image_size, chunk_size):
            features[torch.from_numpy(pos)] = encoder.encode_frames(frames)
            bar.update(len(pos))
    return VideoFeatures(features, times, frame_idx, duration)


_GRID_TOL = 1e-6


class CompositionError(TSPOError, ValueError):
    """A virtual video whose cuts are off the candidate grid, or that runs past a source."""


def on_grid(segments: Sequence[Mapping], fps: float) -> bool:
    """Whether every cut of a virtual video is a whole multiple of ``1/fps`` seconds."""
    try:
        check_grid(segments, fps)
    except CompositionError:
        return False
    return True


def check_grid(segments: Sequence[Mapping], fps: float) -> None:
    """Raise :class:`CompositionError` unless every cut is a whole multiple of ``1/fps`` seconds."""
    for i, seg in enumerate(segments):
        for key in ("start_s", "end_s"):
            steps = float(seg[key]) * fps
            if abs(steps - round(steps)) > 1e-6:
                raise CompositionError(
                    f"segment {i} {key}={seg[key]} is not a multiple of 1/fps = {1 / fps} s, so its candidates "
                    "are not the source's; re-compose with cuts on the grid (tspo synth needle does) or "
                    "encode the decoded candidates instead (tspo.features.cache.encode_candidates(segments, ...))")


def compose_features(segments: Sequence[Mapping], source_features: Mapping[str, object], fps: float = DEFAULT_FPS,
                     max_candidates: int | None = None):
    """Features of a virtual video from per-source ``VideoFeatures`` (full grid at ``fps``, no cap).

    Returns ``VideoFeatures`` with ``T`` rows, one per ``candidate_times`` grid point of the total length
    at ``fps`` (capped at ``max_candidates``): the source candidate nearest the grid point's source time,
    at its presentation time on the composed timeline (as :func:`tspo.video.plan_candidates` reports a
    decoded virtual video); ``frame_indices`` are source frames.
    """
    check_grid(segments, fps)
    lengths = np.array([float(s["end_s"]) - float(s["start_s"]) for s in segments])
    offsets = np.concatenate([[0.0], np.cumsum(lengths)])
    duration = float(offsets[-1])
    times = candidate_times(duration, fps, max_candidates)                        # [T] grid
    seg = np.clip(np.searchsorted(offsets, times + _GRID_TOL, side="right") - 1, 0, len(segments) - 1)
    starts = np.array([float(s["start_s"]) for s in segments])
    ends = np.array([float(s["end_s"]) for s in segments])
    src_times = starts[seg] + (times - offsets[seg])                              # [T] source seconds
    shown = np.empty(len(times), dtype=np.float64)                                # [T] presentation times
    sources = [str(s["source"]) for s in segments]
    first = source_features[sources[0]]
    feats = torch.empty(len(times), first.features.shape[1], dtype=first.features.dtype)
    frame_idx = np.empty(len(times), dtype=np.int64)
    seg_source = np.array(sources, dtype=object)[seg]
    for src in dict.fromkeys(sources):                                            # one gather per source
        rows_here = np.flatnonzero(seg_source == src)
        vf = source_features[src]
        bad = src_times[rows_here] >= vf.duration_s + _GRID_TOL
        if bad.any():
            t = float(src_times[rows_here][bad][0])
            raise CompositionError(f"a segment reads {src} at {t:.3f} s, past its end ({vf.duration_s:.3f} s); "
                                   "cut segments inside their sources")
        # the source's candidate nearest that source time (its candidates are its frames nearest its grid
        # points, so this is the frame nearest the time), never one presented at or after the cut's end
        rows = nearest_frames(vf.timestamps_s, src_times[rows_here])
        over = (vf.timestamps_s[rows] >= ends[seg[rows_here]] - 1e-9) & (rows > 0)
        rows = rows - over
        feats[torch.from_numpy(rows_here)] = vf.features[torch.from_numpy(rows)]
        frame_idx[rows_here] = vf.frame_indices[rows]
        s_here = seg[rows_here]
        shown[rows_here] = offsets[s_here] + np.clip(vf.timestamps_s[rows] - starts[s_here], 0.0, lengths[s_here])
    return VideoFeatures(feats, shown, frame_idx, duration)


def cache_entries(video: VideoLike, fps: float, max_candidates: int | None) -> list[tuple[VideoLike, int | None]]:
    """The cache entries ``(video, max_candidates)`` that :func:`video_features` reads for ``video``:
    the video itself, or, for a virtual video with cuts on the ``1/fps`` grid, each source once at
    the full grid (no cap). No file is opened."""
    if not isinstance(video, str | os.PathLike) and isinstance(video, Sequence) and on_grid(video, fps):
        return [(src, None) for src in dict.fromkeys(str(s["source"]) for s in video)]
    return [(video, max_candidates)]


def entry_key(cache: FeatureCache, video: VideoLike, encoder, fps: float, max_candidates: int | None) -> str:
    """The cache key of one entry for ``encoder`` (its spec, input size and precision)."""
    # fp16 features (GPU) and fp32 features (CPU) differ slightly: never mix them.
    return cache.key(video, encoder.spec, fps, max_candidates, encoder.image_size, str(getattr(encoder, "dtype", "")))


def video_features(
    video: VideoLike,
    encoder,
    fps: float = DEFAULT_FPS,
    max_candidates: int | None = None,
    cache: FeatureCache | None = None,
) -> VideoFeatures:
    """Candidate features of ``video`` (path or segment list): from ``cache`` when present, else
    decoded, encoded and stored. ``cache=None`` computes without storing. A segment list with cuts
    on the ``1/fps`` grid is composed from its sources' cached full-grid features (see the module
    docstring)."""
    if isinstance(video, Mapping):
        raise TypeError("video must be a path or a list of segments, not a single mapping")
    if cache is None:
        return encode_candidates(video, encoder, fps, max_candidates)
    if not isinstance(video, str | os.PathLike) and on_grid(video, fps):
        per_source = {src: video_features(src, encoder, fps, None, cache)
                      for src, _ in cache_entries(video, fps, max_candidates)}
        return compose_features(video, per_source, fps, max_candidates)
    key = entry_key(cache, video, encoder, fps, max_candidates)
    hit = cache.load(key)
    if hit is not None:
        cache.hits += 1
        return hit
    cache.misses += 1
    value = encode_candidates(video, encoder, fps, max_candidates)
    cache.store(key, value)
    return value
