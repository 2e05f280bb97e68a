"""Videos the benchmarks render for themselves (PyAV, H.264), cached between runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def bench_media_dir() -> Path:
    root = Path(os.environ.get("TSPO_CACHE", Path.home() / ".cache" / "tspo")) / "bench_media"
    root.mkdir(parents=True, exist_ok=True)
    return root


def render_scene_video(path: Path, seconds: int, fps: int, height: int, width: int, scene_s: int = 10, seed: int = 0) -> Path:
    """A video of solid-colour scenes (``scene_s`` seconds each) with a moving bar; cached by name."""
    from tspo.video import write_frames

    if path.exists() and path.stat().st_size > 0:
        return path
    tmp = path.with_suffix(".tmp.mp4")
    rng = np.random.default_rng(seed)
    n_scenes = -(-seconds // scene_s)
    colours = rng.integers(0, 256, size=(n_scenes, 3), dtype=np.uint8)

    def frames():
        base = np.empty((height, width, 3), dtype=np.uint8)
        for i in range(seconds * fps):
            scene = (i // fps) // scene_s
            if i % (scene_s * fps) == 0:
                base[:] = colours[scene]
            frame = base.copy()
            x = (i * 7) % (width - 16)
            frame[:, x : x + 16] = 255 - colours[scene]
            yield frame

    write_frames(tmp, frames(), fps, options={"preset": "ultrafast", "crf": "28"})
    tmp.rename(path)
    return path
