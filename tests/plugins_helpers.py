"""Shared pieces of the adapter tests: colour-coded frames, a Selection stand-in, decoders that read
back which frame sits where in a processor's output, and a time-coded test video."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def frame_value(i: int) -> int:
    """Grey level of coded frame i (distinct, far apart so resizing/compression keep them apart)."""
    return 20 * i + 10


def coded_frames(k: int, height: int = 32, width: int = 48) -> np.ndarray:
    """uint8[k, H, W, 3]: frame i is a flat grey of ``frame_value(i)``."""
    return np.stack([np.full((height, width, 3), frame_value(i), np.uint8) for i in range(k)])


@dataclass
class FakeSelection:
    """What adapters read from a tspo.Selection."""

    indices: np.ndarray
    timestamps: np.ndarray
    frames: np.ndarray | None
    candidate_timestamps: np.ndarray | None = None


def fake_selection(timestamps: list[float], fps: float = 30.0) -> FakeSelection:
    ts = np.asarray(timestamps, dtype=np.float64)
    return FakeSelection(
        indices=np.round(ts * fps).astype(np.int64),
        timestamps=ts,
        frames=coded_frames(len(ts)),
        candidate_timestamps=np.arange(0.0, float(np.ceil(ts[-1])) + 1.0, 1.0),
    )


def _unnormalise(x: np.ndarray, video_processor) -> np.ndarray:
    mean = np.asarray(video_processor.image_mean)[0]
    std = np.asarray(video_processor.image_std)[0]
    return (x * std + mean) * 255.0


def qwen_fed_values(inputs, processor) -> np.ndarray:
    """Grey level of each frame in Qwen ``pixel_values_videos`` (incl. the padding frame), in order.

    Rows are patches of ``[C, temporal_patch, ps, ps]``, grouped by temporal patch first."""
    vp = processor.video_processor
    t, h, w = (int(v) for v in inputs["video_grid_thw"][0])
    pv = inputs["pixel_values_videos"].float().numpy()
    pv = pv.reshape(t, h * w, 3, vp.temporal_patch_size, vp.patch_size * vp.patch_size)
    red = pv[:, :, 0].mean(axis=(1, 3))  # [t, temporal_patch]
    return _unnormalise(red.reshape(-1), vp)


def llava_fed_values(inputs, processor) -> np.ndarray:
    """Grey level of each frame in LLaVA ``pixel_values_videos`` [1, k, 3, H, W], in order."""
    pv = inputs["pixel_values_videos"][0].float().numpy()
    return _unnormalise(pv[:, 0].mean(axis=(1, 2)), processor.video_processor)


def render_time_coded_video(
    path: Path, seconds: int = 12, fps: int = 10, size: tuple[int, int] = (64, 48)
) -> Path:
    """An H.264 clip whose frames during second s are a flat grey of ``frame_value(s)``."""
    from tspo.video import write_frames

    width, height = size
    frames = (np.full((height, width, 3), frame_value(n // fps), np.uint8) for n in range(seconds * fps))
    return write_frames(path, frames, fps, options={"crf": "10"})
