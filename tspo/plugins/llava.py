"""LLaVA-OneVision / LLaVA-Video adapter (transformers ``LlavaOnevisionProcessor``; also works with
``LlavaNextVideoProcessor``): the selected frames as the video, in time order, one feature map each.

LLaVA-Video was trained with a *time instruction* in front of the question ("The video lasts for
D seconds, and k frames are sampled from it. These frames are located at 0.00s,4.00s,...");
``style="llava_video"`` writes it with the selection's real timestamps. ``style="onevision"``
(LLaVA-OneVision, which saw no such instruction in training) adds only a short timestamp line
when ``timestamps_in_prompt`` is true.

Usage with real weights::

    from transformers import AutoProcessor, LlavaOnevisionForConditionalGeneration
    name = "llava-hf/llava-onevision-qwen2-7b-ov-hf"   # or a LLaVA-Video checkpoint in HF format
    processor = AutoProcessor.from_pretrained(name)
    model = LlavaOnevisionForConditionalGeneration.from_pretrained(name)
    built = llava_inputs(processor, sel, question, style="onevision")
    out = model.generate(**built.inputs, max_new_tokens=64)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tspo.plugins import AdapterInputError, SelectedClip, VideoModelInputs, clip_from_selection
from tspo.plugins._clip import chat_messages, check_question, render_chat, timestamps_sentence

VIDEO_TOKEN = "<video>"  # the placeholder of LLaVA's ChatML layout (used when a processor has no chat template)

STYLES = ("onevision", "llava_video")


def video_duration_s(selection: Any) -> float:
    """The source video's duration in seconds, as far as the selection tells: a zoom selection's
    ``zoom.duration_s``, else the last candidate's time plus one candidate spacing, else the last frame's time."""
    zoom = getattr(selection, "zoom", None)
    duration = None if zoom is None else zoom.duration_s
    if duration is not None:
        return float(duration)
    cands = getattr(selection, "candidate_timestamps", None)
    if cands is not None and len(cands) >= 2:
        cands = np.asarray(cands, dtype=np.float64)
        return float(cands[-1] + np.median(np.diff(cands)))
    clip = clip_from_selection(selection)
    return float(clip.timestamps_s[-1])


def llava_video_time_instruction(clip: SelectedClip, duration_s: float) -> str:
    """LLaVA-Video's time instruction with the real frame times (two decimals, as in training)."""
    frame_time = ",".join(f"{t:.2f}s" for t in clip.timestamps_s)
    return (
        f"The video lasts for {duration_s:.2f} seconds, and {clip.num_frames} frames are sampled from it. "
        f"These frames are located at {frame_time}.Please answer the following questions related to this video."
    )


def llava_messages(
    selection: Any,
    question: str,
    *,
    style: str = "onevision",
    timestamps_in_prompt: bool = True,
    duration_s: float | None = None,
    system: str | None = None,
) -> list[dict]:
    """Chat messages for ``processor.apply_chat_template``: a video placeholder then the text."""
    if style not in STYLES:
        raise AdapterInputError(f"style must be one of {STYLES}, got {style!r}")
    question = check_question(question)
    clip = clip_from_selection(selection)
    if style == "llava_video":
        duration = video_duration_s(selection) if duration_s is None else float(duration_s)
        if duration < clip.timestamps_s[-1]:
            raise AdapterInputError(
                f"duration_s={duration} is shorter than the last selected frame ({clip.timestamps_s[-1]} s)"
            )
        text = f"{llava_video_time_instruction(clip, duration)}\n{question}"
    else:
        text = f"{timestamps_sentence(clip)}\n{question}" if timestamps_in_prompt else question
    return chat_messages({"type": "video"}, text, system)


def llava_inputs(processor: Any, selection: Any, question: str, *, style: str = "onevision",
                 timestamps_in_prompt: bool = True, duration_s: float | None = None, system: str | None = None,
                 return_tensors: str = "pt") -> VideoModelInputs:
    """Processor inputs holding exactly the selected frames: ``pixel_values_videos`` is
    ``[1, k, 3, H, W]`` with frame i the i-th selected frame (time order)."""
    clip = clip_from_selection(selection)
    messages = llava_messages(
        clip if duration_s is not None or style != "llava_video" else selection,
        question,
        style=style,
        timestamps_in_prompt=timestamps_in_prompt,
        duration_s=duration_s,
        system=system,
    )
    inputs, texts = _llava_processor_call(processor, [clip], [messages], return_tensors)
    return VideoModelInputs(
        inputs=inputs,
        messages=messages,
        text=texts[0],
        timestamps_s=clip.timestamps_s.copy(),
        num_frames=clip.num_frames,
        extra={"style": style},
    )


def llava_batch_inputs(processor: Any, clips: list[SelectedClip], questions: list[str], *,
                       timestamps_in_prompt: bool = True, system: str | None = None, return_tensors: str = "pt",
                       **processor_kwargs: Any) -> tuple[Any, list[list[dict]], list[str]]:
    """The one LLaVA-OneVision prompt/input builder (``style="onevision"``) for B selections at once
    (the plug-in: B = 1; the HF oracle: a GRPO group): -> (processor output, messages, prompts)."""
    messages = [llava_messages(c, q, style="onevision", timestamps_in_prompt=timestamps_in_prompt, system=system)
                for c, q in zip(clips, questions, strict=True)]  # fmt: skip
    inputs, texts = _llava_processor_call(processor, clips, messages, return_tensors, **processor_kwargs)
    return inputs, messages, texts


def _llava_processor_call(processor: Any, clips: list[SelectedClip], messages: list[list[dict]],
                          return_tensors: str, **processor_kwargs: Any) -> tuple[Any, list[str]]:
    if getattr(processor, "video_processor", None) is None:
        raise AdapterInputError(
            f"{type(processor).__name__} has no video_processor; pass a LLaVA-OneVision / LLaVA-Video processor"
        )
    texts = [render_chat(processor, m, VIDEO_TOKEN) for m in messages]
    inputs = processor(text=texts, videos=[c.frames for c in clips], do_sample_frames=False,
                       return_tensors=return_tensors, **processor_kwargs)  # fmt: skip
    return inputs, texts


__all__ = ["STYLES", "llava_batch_inputs", "llava_inputs", "llava_messages", "llava_video_time_instruction", "video_duration_s"]
