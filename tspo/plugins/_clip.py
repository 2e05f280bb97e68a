"""The selected frames an adapter hands to a downstream model: pixels, source indices, seconds.

Every adapter starts from a :class:`SelectedClip`, built from a :class:`tspo.Selection` (or any
object with ``indices``, ``timestamps`` and ``frames``) by :func:`clip_from_selection`, which checks
once what all adapters rely on: frames present, one timestamp per frame, time ascending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from tspo.errors import TSPOError
from tspo.video import write_frames


class AdapterInputError(TSPOError, ValueError):
    """A selection, frame array or prompt that an MLLM adapter cannot turn into model inputs."""


@dataclass(frozen=True)
class SelectedClip:
    """k selected frames in time order.

    frames: uint8[k, H, W, 3] RGB; timestamps_s: float64[k] seconds on the video's timeline,
    strictly ascending; indices: int64[k] frame indices in the source video.
    """

    frames: np.ndarray
    timestamps_s: np.ndarray
    indices: np.ndarray
    clip_spans_s: np.ndarray | None = None  # float64[C, 2] first/last frame time of each clip (unit="clip")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last selected frame (0 for one frame)."""
        return float(self.timestamps_s[-1] - self.timestamps_s[0])

    def mean_fps(self) -> float:
        """Frames per second the clip would play at if its k frames were evenly spaced over
        ``span_s``: ``(k − 1) / span_s``; 1.0 for a single frame (no spacing to measure)."""
        if self.num_frames < 2 or self.span_s <= 0:
            return 1.0
        return (self.num_frames - 1) / self.span_s


def clip_from_selection(selection: Any) -> SelectedClip:
    """Validate a Selection-like object (``frames``, ``timestamps``, ``indices``) -> SelectedClip."""
    if isinstance(selection, SelectedClip):
        return selection
    frames = getattr(selection, "frames", None)
    if frames is None:
        raise AdapterInputError(
            "selection has no frames; select with return_frames=True "
            "(e.g. selector.select(video, question, num_frames=k, return_frames=True))"
        )
    timestamps = getattr(selection, "timestamps", None)
    indices = getattr(selection, "indices", None)
    if timestamps is None:
        raise AdapterInputError(
            "selection has no timestamps; pass a tspo.Selection or an object with .timestamps"
        )
    if indices is None:
        indices = np.arange(len(timestamps), dtype=np.int64)
    clip = make_clip(frames, timestamps, indices)
    trace = getattr(selection, "clips", None)   # a unit="clip" Selection's ClipTrace
    spans = getattr(trace, "spans_s", None)
    if spans is None:
        return clip
    return SelectedClip(clip.frames, clip.timestamps_s, clip.indices, np.asarray(spans, dtype=np.float64).reshape(-1, 2))


def make_clip(frames: Any, timestamps_s: Sequence[float] | np.ndarray, indices: Any = None) -> SelectedClip:
    """Build a SelectedClip from raw arrays: frames uint8[k,H,W,3], timestamps float[k] seconds."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise AdapterInputError(f"frames must be uint8[k, H, W, 3] RGB, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise AdapterInputError(
            f"frames must be uint8 (0..255), got {frames.dtype}; convert with .astype(np.uint8)"
        )
    if frames.shape[0] == 0:
        raise AdapterInputError("selection holds no frames (k = 0); select at least one frame")
    ts = np.asarray(timestamps_s, dtype=np.float64).reshape(-1)
    if ts.shape[0] != frames.shape[0]:
        raise AdapterInputError(
            f"got {frames.shape[0]} frames but {ts.shape[0]} timestamps; pass one per frame"
        )
    if not np.all(np.isfinite(ts)) or np.any(np.diff(ts) <= 0):
        raise AdapterInputError(
            f"timestamps must be finite seconds in strictly ascending order, got {ts.tolist()}; "
            "sort the frames by time"
        )
    idx = np.arange(ts.shape[0], dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
    if idx.shape != ts.shape:
        raise AdapterInputError(
            f"got {ts.shape[0]} timestamps but {idx.shape[0]} indices; pass one per frame"
        )
    return SelectedClip(frames=frames, timestamps_s=ts, indices=idx)


@dataclass
class VideoModelInputs:
    """What an adapter built for one (selection, question) pair.

    inputs: the processor output (``BatchFeature``), ready for ``model.generate(**inputs)``;
    messages: the chat messages the prompt was rendered from; text: the rendered prompt;
    timestamps_s: float64[k] seconds of the frames fed, in order; num_frames: k;
    extra: model-specific facts (e.g. Qwen's per-temporal-patch times and seconds per grid).
    """

    inputs: Any
    messages: list
    text: str
    timestamps_s: np.ndarray
    num_frames: int
    extra: dict


def render_chat(processor: Any, messages: list, fallback_video_token: str | None = None,
                default_system: str | None = None) -> str:
    """Render ``messages`` with the processor's chat template (generation prompt appended).

    A processor without a chat template (a base checkpoint) gets the family's ChatML layout when
    the family names its ``fallback_video_token`` (and ``default_system``, the system turn its own
    template adds when none is given); without one it is an error."""
    if getattr(processor, "chat_template", None):
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if fallback_video_token is None:
        raise AdapterInputError(
            f"{type(processor).__name__} has no chat_template; load the processor of an instruct/chat model "
            "(AutoProcessor.from_pretrained(...)) or set processor.chat_template"
        )
    if default_system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": [{"type": "text", "text": default_system}]}, *messages]
    turns = []
    for m in messages:
        parts = [fallback_video_token if c["type"] == "video" else c["text"] for c in m["content"]]
        turns.append(f"<|im_start|>{m['role']}\n{''.join(parts)}<|im_end|>\n")
    return "".join(turns) + "<|im_start|>assistant\n"


def chat_messages(video: dict, text: str, system: str | None = None) -> list[dict]:
    """One user turn: the video entry, then ``text``; a system turn first when ``system`` is given."""
    messages: list[dict] = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    messages.append({"role": "user", "content": [video, {"type": "text", "text": text}]})
    return messages


def check_question(question: str) -> str:
    """The question text an adapter puts in the prompt: a non-empty string."""
    if not isinstance(question, str) or not question.strip():
        raise AdapterInputError(f"question must be a non-empty string, got {question!r}")
    return question


def format_seconds(t: float, decimals: int = 1) -> str:
    """Seconds as the prompts write them ("12.0"), without the unit."""
    return f"{t:.{decimals}f}"


def format_times(timestamps_s: np.ndarray) -> list[str]:
    """Each timestamp with one decimal, or as many more (up to 3) as keep distinct frames distinct
    (frames 2.00 s and 2.03 s must not both read "2.0")."""
    for decimals in (1, 2, 3):
        texts = [format_seconds(t, decimals) for t in timestamps_s]
        if len(set(texts)) == len(texts):
            break
    return texts


def timestamps_sentence(clip: SelectedClip) -> str:
    """One line telling the model when each frame was taken, in order."""
    times = ", ".join(f"{t}s" for t in format_times(clip.timestamps_s))
    sentence = f"The {clip.num_frames} video frames were taken at {times}."
    if clip.clip_spans_s is not None and len(clip.clip_spans_s):
        # clip selections: say which frames run on as one clip, so the model reads motion across them
        bounds = format_times(np.unique(clip.clip_spans_s))
        lookup = dict(zip(np.unique(clip.clip_spans_s).tolist(), bounds))
        spans = ", ".join(f"{lookup[a]}s-{lookup[b]}s" for a, b in clip.clip_spans_s.tolist())
        sentence += f" They form {len(clip.clip_spans_s)} clip(s) of consecutive frames: {spans}."
    return sentence


def to_pil_images(clip: SelectedClip) -> list:
    """The clip's frames as PIL RGB images, in time order."""
    from PIL import Image

    return [Image.fromarray(frame) for frame in clip.frames]


def write_clip(clip: SelectedClip, path: str | Path, crf: int = 12) -> Path:
    """Write the clip's frames, in order, as an H.264 video at the clip's mean frame rate.

    For models that only take a video *file*: a uniform sampler asking it for k frames gets
    exactly these k. Odd frame sizes are cropped by one pixel (yuv420p needs even sizes)."""
    frames = clip.frames[:, : clip.frames.shape[1] // 2 * 2, : clip.frames.shape[2] // 2 * 2]
    if frames.shape[1] == 0 or frames.shape[2] == 0:
        raise AdapterInputError(f"frames of {clip.frames.shape[1:3]} pixels are too small to encode")
    rate = Fraction(clip.mean_fps()).limit_denominator(1001)
    return write_frames(path, frames, rate, options={"crf": str(int(crf))})
