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
    import av

    if path.exists() and path.stat().st_size > 0:
        return path
    tmp = path.with_suffix(".tmp.mp4")
    rng = np.random.default_rng(seed)
    n_scenes = -(-seconds // scene_s)
    colours = rng.integers(0, 256, size=(n_scenes, 3), dtype=np.uint8)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        base = np.empty((height, width, 3), dtype=np.uint8)
        for i in range(seconds * fps):
            scene = (i // fps) // scene_s
            if i % (scene_s * fps) == 0:
                base[:] = colours[scene]
            frame = base.copy()
            x = (i * 7) % (width - 16)
            frame[:, x : x + 16] = 255 - colours[scene]
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return path
