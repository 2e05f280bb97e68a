"""On-disk store of candidate features, so a video is decoded and encoded once.

Key: (content identity of the video file(s) and segment bounds, encoder spec, fps,
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

from tspo.settings import DEFAULT_FPS
from tspo.video import VideoLike, file_identity, iter_frames_at, plan_candidates

logger = logging.getLogger(__name__)
_FORMAT_VERSION = 1


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
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "features": value.features.float().contiguous(),
            "timestamps_s": torch.from_numpy(np.ascontiguousarray(value.timestamps_s, dtype=np.float64)),
            "frame_indices": torch.from_numpy(np.ascontiguousarray(value.frame_indices, dtype=np.int64)),
            "duration_s": torch.tensor([value.duration_s], dtype=torch.float64),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp)
            os.replace(tmp, path)
            self._remember(key, value)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def encode_candidates(
    video: VideoLike, encoder, fps: float = DEFAULT_FPS, max_candidates: int | None = None, chunk_size: int = 64
) -> VideoFeatures:
    """Decode and encode the candidates of ``video`` chunk by chunk (no cache): -> ``[T, D]``.

    Only ``chunk_size`` decoded frames live in memory at once, so an hour of video costs the
    features (T x D floats), not the frames.
    """
    times, _, frame_idx, duration = plan_candidates(video, fps, max_candidates)
    features = torch.empty(len(times), encoder.dim, dtype=torch.float32)
    for pos, frames in iter_frames_at(video, times, encoder.image_size, chunk_size):
        features[torch.from_numpy(pos)] = encoder.encode_frames(frames)
    return VideoFeatures(features, times, frame_idx, duration)


def video_features(
    video: VideoLike,
    encoder,
    fps: float = DEFAULT_FPS,
    max_candidates: int | None = None,
    cache: FeatureCache | None = None,
) -> VideoFeatures:
    """Candidate features of ``video`` (path or segment list): from ``cache`` when present, else
    decoded, encoded and stored. ``cache=None`` computes without storing."""
    if isinstance(video, Mapping):
        raise TypeError("video must be a path or a list of segments, not a single mapping")
    if cache is None:
        return encode_candidates(video, encoder, fps, max_candidates)
    # fp16 features (GPU) and fp32 features (CPU) differ slightly: never mix them.
    key = cache.key(video, encoder.spec, fps, max_candidates, encoder.image_size, str(getattr(encoder, "dtype", "")))
    hit = cache.load(key)
    if hit is not None:
        cache.hits += 1
        return hit
    cache.misses += 1
    value = encode_candidates(video, encoder, fps, max_candidates)
    cache.store(key, value)
    return value
