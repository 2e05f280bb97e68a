"""Synthetic videos with exact ground truth: target clips (shapes + QA) and distractor haystack.

Target clips: big solid shapes in bright colours on dark solid backgrounds, one event per few
seconds (see ``events.py``). Distractor videos: a visually different family (moving gradients,
stripes, checkerboards, smooth noise, no shapes) that a learned selector can tell apart from
target material. Frames are drawn a whole event/scene at a time with numpy broadcasting and
written as H.264 (PyAV, libx264 ``ultrafast``): a 10-minute 96x96 video at 4 fps takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tspo.manifest import Sample
from tspo.progress import progress_bar
from tspo.video import write_frames

from .events import BACKGROUNDS, COLOURS, QUESTION_KINDS, ClipTruth, Event, RenderError, make_clip_truth

DISTRACTOR_PATTERNS = ("gradient", "stripes", "checker", "noise", "plasma")


def _check_size(size: int, fps: int) -> None:
    if not isinstance(size, int) or size < 16 or size % 2:
        raise RenderError(f"size must be an even number of pixels >= 16 (H.264 4:2:0), got {size!r}")
    if not isinstance(fps, int) or fps < 1:
        raise RenderError(f"render fps must be a positive integer, got {fps!r}")


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Boolean mask of a unit-radius shape; ``dx, dy`` are offsets in radii (y grows downwards)."""
    r = np.sqrt(dx**2 + dy**2)
    if shape == "circle":
        return r <= 1.0
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.0
    if shape == "triangle":  # apex up
        return (dy <= 0.7) & (np.abs(dx) <= (dy + 1.0) / 1.7)
    if shape == "star":  # five points, one pointing up
        theta = np.arctan2(dy, dx)
        return r <= 0.42 + 0.58 * ((np.cos(5 * (theta + np.pi / 2)) + 1) / 2) ** 2
    if shape == "cross":
        return ((np.abs(dx) <= 0.3) & (np.abs(dy) <= 1.0)) | ((np.abs(dy) <= 0.3) & (np.abs(dx) <= 1.0))
    if shape == "ring":
        return (r <= 1.0) & (r >= 0.55)
    raise RenderError(f"unknown shape {shape!r}")


@lru_cache(maxsize=64)
def _text_mask(text: str, size: int) -> np.ndarray:
    """bool[H,W]: the word in a band at the bottom of the frame (white, drawn over the shape)."""
    img = Image.new("L", (size, size), 0)
    font = ImageFont.load_default(size=max(8, size // 5))
    draw = ImageDraw.Draw(img)
    box = draw.textbbox((0, 0), text, font=font)
    w, h = box[2] - box[0], box[3] - box[1]
    draw.text(((size - w) // 2 - box[0], size - h - max(2, size // 24) - box[1]), text, fill=255, font=font)
    return np.asarray(img) > 127


def event_frames(event: Event, fps: int, size: int) -> np.ndarray:
    """uint8[n, size, size, 3] frames of one event, ``n = (end_s - start_s) * fps``; deterministic."""
    n = (event.end_s - event.start_s) * fps
    progress = (np.arange(n) + 0.5) / n                       # [n] in (0, 1)
    amp = 0.2 * size
    shift = (progress - 0.5) * 2 * amp                        # [n] pixels
    cx = np.full(n, size / 2.0)
    cy = np.full(n, size / 2.0 - 0.06 * size)
    if event.motion == "left":
        cx = cx - shift
    elif event.motion == "right":
        cx = cx + shift
    elif event.motion == "up":
        cy = cy - shift
    elif event.motion == "down":
        cy = cy + shift
    radius = 0.27 * size
    grid = np.arange(size) + 0.5
    dx = (grid[None, None, :] - cx[:, None, None]) / radius   # [n,1,W]
    dy = (grid[None, :, None] - cy[:, None, None]) / radius   # [n,H,1]
    dx, dy = np.broadcast_arrays(dx, dy)
    mask = _shape_mask(event.shape, dx, dy)                   # [n,H,W]
    frames = np.empty((n, size, size, 3), np.uint8)
    frames[:] = np.asarray(BACKGROUNDS[event.background], np.uint8)
    frames[mask] = np.asarray(COLOURS[event.colour], np.uint8)
    if event.text:
        tm = _text_mask(event.text, size)
        frames[:, tm] = 255
    return frames


def distractor_scene(rng: np.random.Generator, seconds: int) -> dict:
    """Random parameters of one haystack scene (a texture family, never a shape)."""
    return {"pattern": DISTRACTOR_PATTERNS[rng.integers(len(DISTRACTOR_PATTERNS))], "seconds": int(seconds),
            "colours": rng.integers(40, 256, size=(2, 3)).tolist(), "freq": float(rng.uniform(1.5, 5.0)),
            "angle": float(rng.uniform(0, np.pi)), "speed": float(rng.uniform(0.2, 1.0)),
            "noise_seed": int(rng.integers(2**31))}


def scene_frames(scene: dict, fps: int, size: int) -> np.ndarray:
    """uint8[n, size, size, 3] frames of one distractor scene, ``n = seconds * fps``."""
    n = scene["seconds"] * fps
    t = np.arange(n)[:, None, None] / fps                     # [n,1,1] seconds
    grid = (np.arange(size) + 0.5) / size
    y, x = grid[None, :, None], grid[None, None, :]           # [1,H,1], [1,1,W]
    c0, c1 = (np.asarray(c, np.float32) for c in scene["colours"])
    u = np.cos(scene["angle"]) * x + np.sin(scene["angle"]) * y
    f, v = scene["freq"], scene["speed"]
    pattern = scene["pattern"]
    if pattern == "gradient":
        w = (np.sin(2 * np.pi * (u + 0.1 * v * t)) + 1) / 2
    elif pattern == "stripes":
        w = (np.sin(2 * np.pi * (3 * f * u - v * t)) > 0).astype(np.float32)
    elif pattern == "checker":
        w = ((np.floor(f * 2 * (x + 0.05 * v * t)) + np.floor(f * 2 * y)) % 2).astype(np.float32)
    elif pattern == "noise":  # smooth value noise, drifting
        g = np.random.default_rng(scene["noise_seed"]).random((8, 8)).astype(np.float32)
        up = np.kron(g, np.ones((size // 8 + 1, size // 8 + 1), np.float32))[:size, :size]
        shifts = (v * 4 * t[:, 0, 0]).astype(int) % size
        cols = (np.arange(size)[None, :] - shifts[:, None]) % size         # [n,W] rolled columns
        w = up[:, cols].transpose(1, 0, 2)                                  # [n,H,W]
    else:  # plasma
        w = (np.sin(2 * np.pi * f * x + v * 2 * t) + np.sin(2 * np.pi * f * y * 0.7 - v * 3 * t)
             + np.sin(2 * np.pi * f * (x + y) * 0.5 + v * t) + 3) / 6
    # a soft diagonal shading on every pattern: no haystack frame is a few flat colours like a target
    w = 0.8 * np.broadcast_to(w, (n, size, size)) + 0.2 * ((x + y) / 2)
    w = w[..., None]
    return (c0 * (1 - w) + c1 * w).clip(0, 255).astype(np.uint8)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: int, size: int, crf: int = 18) -> Path:
    """Encode uint8[size, size, 3] frames (or [n, size, size, 3] chunks) as H.264 mp4 at ``fps``
    (:func:`tspo.video.write_frames`, libx264 ultrafast)."""
    return write_frames(path, frames, fps, options={"preset": "ultrafast", "crf": str(crf)})


def clip_frames(truth: ClipTruth, fps: int, size: int) -> Iterator[np.ndarray]:
    """The frames of a target clip, event by event ([n_event, H, W, 3] chunks)."""
    for ev in truth.events:
        yield event_frames(ev, fps, size)


def render_target_clip(path: str | Path, rng: np.random.Generator, duration_s: int, fps: int = 4,
                       size: int = 96, event_seconds: tuple[int, int] = (3, 6), num_options: int = 4,
                       kinds: tuple[str, ...] = QUESTION_KINDS) -> ClipTruth:
    """Render one target clip of ``duration_s`` whole seconds and return its ground truth."""
    _check_size(size, fps)
    truth = make_clip_truth(rng, int(duration_s), event_seconds, num_options, kinds)
    write_video(path, clip_frames(truth, fps, size), fps, size)
    return truth


def render_distractor(path: str | Path, rng: np.random.Generator, duration_s: int, fps: int = 4,
                      size: int = 96, scene_seconds: tuple[int, int] = (5, 20)) -> list[dict]:
    """Render one haystack video of ``duration_s`` whole seconds; returns its scenes."""
    _check_size(size, fps)
    lo, hi = scene_seconds
    if not 1 <= lo <= hi:
        raise RenderError(f"scene_seconds must be 1 <= lo <= hi, got {scene_seconds}")
    scenes, left = [], int(duration_s)
    while left > 0:
        d = min(left, int(rng.integers(lo, hi + 1)))
        scenes.append(distractor_scene(rng, d))
        left -= d
    write_video(path, (scene_frames(s, fps, size) for s in scenes), fps, size)
    return scenes


def render_dataset(out_dir: str | Path, num: int, seed: int = 0, family: str = "target",
                   min_seconds: int = 60, max_seconds: int = 180, fps: int = 4, size: int = 96,
                   event_seconds: tuple[int, int] = (3, 6), num_options: int = 4,
                   kinds: tuple[str, ...] = QUESTION_KINDS, progress: bool = True) -> list[Sample]:
    """Render ``num`` videos into ``out_dir/videos/``; targets also get ``Sample``s with QA.

    ``family="distractor"`` renders haystack videos (``extra["scenes"]`` instead of a question); their
    samples carry a placeholder question and are not meant for training.
    """

    if num < 1:
        raise RenderError(f"num must be >= 1, got {num}")
    if family not in ("target", "distractor"):
        raise RenderError(f"family must be 'target' or 'distractor', got {family!r}")
    if not 1 <= min_seconds <= max_seconds:
        raise RenderError(f"need 1 <= min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    samples = []
    for i in progress_bar(range(num), desc=f"render {family}", unit="video", disable=not progress):
        duration = int(rng.integers(min_seconds, max_seconds + 1))
        sid = f"{'clip' if family == 'target' else 'haystack'}-{seed}-{i:05d}"
        path = out / "videos" / f"{sid}.mp4"
        if family == "target":
            truth = render_target_clip(path, rng, duration, fps, size, event_seconds, num_options, kinds)
            samples.append(Sample(
                id=sid, video=str(path), question=truth.question, options=truth.options, answer=truth.answer,
                kind="general", target_spans_s=[], evidence_spans_s=truth.evidence_spans_s,
                duration_s=float(duration), extra={**truth.to_extra(), "fps": fps, "size": size}))
        else:
            scenes = render_distractor(path, rng, duration, fps, size)
            samples.append(Sample(
                id=sid, video=str(path), question="Which pattern fills the screen?",
                options=["a texture", "a shape"], answer="A", kind="general", target_spans_s=[],
                evidence_spans_s=None, duration_s=float(duration),
                extra={"family": "distractor", "scenes": scenes, "fps": fps, "size": size}))
    return samples
