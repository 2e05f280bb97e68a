"""Shared test set-up: offline, a private feature cache, tiny models and rendered videos."""

from __future__ import annotations

import os

# Tests never touch the network, and never write into the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    os.environ["TSPO_CACHE"] = str(tmp_path_factory.mktemp("tspo_cache"))
    yield


def write_video(
    path: str | Path,
    seconds: float,
    fps: int = 4,
    size: tuple[int, int] = (48, 64),
    codec: str = "libx264",
    colours: np.ndarray | None = None,
) -> Path:
    """Render a test video whose every second has its own solid colour (+ a moving bar).

    ``size`` is (height, width). ``colours``: uint8[ceil(seconds), 3], one colour per second
    (default: a fixed pseudo-random palette). Frame ``i`` shows second ``i // fps``.
    """
    from tspo.video import write_frames

    num_frames = int(round(seconds * fps))
    n_sec = int(np.ceil(seconds))
    if colours is None:
        colours = np.random.default_rng(7).integers(0, 256, size=(n_sec, 3), dtype=np.uint8)
    height, width = size

    def frames():
        for i in range(num_frames):
            frame = np.empty((height, width, 3), dtype=np.uint8)
            frame[:] = colours[min(i // fps, n_sec - 1)]
            bar = (i * 3) % max(width - 4, 1)
            frame[:, bar : bar + 4] = 255 - colours[min(i // fps, n_sec - 1)]
            yield frame

    return write_frames(path, frames(), fps, codec=codec)


@pytest.fixture(scope="session")
def tiny_encoder():
    from tspo.features.encoders import load_encoder

    return load_encoder("tiny-random")


@pytest.fixture(scope="session")
def short_video(tmp_path_factory) -> Path:
    """20 s, 4 fps, 48x64: each second a distinct colour."""
    return write_video(tmp_path_factory.mktemp("videos") / "short.mp4", seconds=20, fps=4)
