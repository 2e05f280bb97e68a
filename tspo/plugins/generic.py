"""Model-agnostic adapters: an image-list prompt for any multi-image MLLM, and an
OpenAI-compatible chat message with base64 frames (vLLM, SGLang, OpenAI, ... servers).

Both interleave each frame with its real timestamp ("Frame at 12.0 s: <image>"), so a model that
has no notion of video time still learns when each selected frame was taken.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from tspo.plugins._clip import (
    AdapterInputError,
    SelectedClip,
    clip_from_selection,
    format_times,
    to_pil_images,
)

DEFAULT_FRAME_TEMPLATE = "Frame at {t} s: {image}"


@dataclass
class ImageListPrompt:
    """A prompt for an image-list MLLM.

    text: the prompt, one ``frame_template`` line per frame (time order) then the question;
    images: the k frames as PIL images, in the order their image tokens appear in ``text``;
    timestamps_s: float64[k] seconds of each image.
    """

    text: str
    images: list
    timestamps_s: Any


def image_list_prompt(
    selection: Any,
    question: str,
    *,
    image_token: str = "<image>",
    frame_template: str = DEFAULT_FRAME_TEMPLATE,
) -> ImageListPrompt:
    """Build ``"Frame at 0.0 s: <image>\\nFrame at 4.0 s: <image>\\n...\\n{question}"`` plus the images.

    ``frame_template`` must contain ``{t}`` (seconds, one decimal) and ``{image}`` (replaced by
    ``image_token``, the placeholder your model's processor expands into image features).
    """
    clip = clip_from_selection(selection)
    _check_question(question)
    for field in ("{t}", "{image}"):
        if field not in frame_template:
            raise AdapterInputError(
                f"frame_template must contain {field}, got {frame_template!r}; e.g. {DEFAULT_FRAME_TEMPLATE!r}"
            )
    lines = [frame_template.format(t=t, image=image_token) for t in format_times(clip.timestamps_s)]
    return ImageListPrompt(
        text="\n".join([*lines, question]), images=to_pil_images(clip), timestamps_s=clip.timestamps_s.copy()
    )


def encode_frame(frame: Any, image_format: str = "jpeg", quality: int = 90) -> str:
    """uint8[H, W, 3] -> a ``data:image/<format>;base64,...`` URL."""
    from PIL import Image

    fmt = image_format.lower()
    if fmt not in {"jpeg", "png", "webp"}:
        raise AdapterInputError(f"image_format must be 'jpeg', 'png' or 'webp', got {image_format!r}")
    buffer = io.BytesIO()
    kwargs = {} if fmt == "png" else {"quality": int(quality)}
    Image.fromarray(frame).save(buffer, format=fmt.upper(), **kwargs)
    return f"data:image/{fmt};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def openai_messages(
    selection: Any,
    question: str,
    *,
    system: str | None = None,
    image_format: str = "jpeg",
    quality: int = 90,
    detail: str | None = None,
    frame_label: str = "Frame at {t} s:",
) -> list[dict]:
    """OpenAI-compatible chat ``messages``: one user turn with, per frame in time order, a text part
    ``"Frame at {t} s:"`` then an ``image_url`` part holding the frame as base64; the question last.

    Send with ``client.chat.completions.create(model=..., messages=openai_messages(sel, q))``.
    ``detail`` ("low" | "high" | "auto") is passed through for servers that honour it.
    """
    clip = clip_from_selection(selection)
    _check_question(question)
    if "{t}" not in frame_label:
        raise AdapterInputError(f"frame_label must contain {{t}}, got {frame_label!r}")
    if detail is not None and detail not in {"low", "high", "auto"}:
        raise AdapterInputError(f"detail must be 'low', 'high', 'auto' or None, got {detail!r}")
    content: list[dict] = []
    for frame, t in zip(clip.frames, format_times(clip.timestamps_s)):
        image_url: dict = {"url": encode_frame(frame, image_format, quality)}
        if detail is not None:
            image_url["detail"] = detail
        content.append({"type": "text", "text": frame_label.format(t=t)})
        content.append({"type": "image_url", "image_url": image_url})
    content.append({"type": "text", "text": question})
    messages: list[dict] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": content})
    return messages


def _check_question(question: str) -> None:
    if not isinstance(question, str) or not question.strip():
        raise AdapterInputError(f"question must be a non-empty string, got {question!r}")


__all__ = [
    "DEFAULT_FRAME_TEMPLATE",
    "ImageListPrompt",
    "SelectedClip",
    "encode_frame",
    "image_list_prompt",
    "openai_messages",
]
