"""Qwen2-VL / Qwen2.5-VL adapter: the selected frames as *the* video the model sees.

Qwen's video processor groups frames in temporal patches of ``temporal_patch_size`` (2) frames
(an odd k is padded with the last frame). Qwen2.5-VL also places each temporal patch on an
absolute time axis through ``second_per_grid_ts`` (seconds between consecutive temporal
patches); we set it from the *real* timestamps of the selected frames (their mean spacing), not
from a frame rate the selection never had. Qwen2-VL has no time axis, so the real timestamps also
go into the prompt as text (``timestamps_in_prompt``, on by default).

A clip selection (``select_frames(..., unit="clip")``) goes in as one video too: its frames were
read at the size the token budget planned (``tspo.token_budget``), so the processor spends exactly
``selection.token_plan.tokens`` video tokens, and the prompt names the clips and every frame's real
time (Qwen2.5-VL's single ``second_per_grid_ts`` can only carry their mean spacing).

Usage with real weights::

    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    processor = AutoProcessor.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct")
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct")
    sel = selector.select("video.mp4", question, num_frames=16, return_frames=True)
    built = qwen_inputs(processor, sel, question)
    out = model.generate(**built.inputs, max_new_tokens=64)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tspo.plugins._clip import (
    AdapterInputError,
    SelectedClip,
    VideoModelInputs,
    chat_messages,
    check_question,
    clip_from_selection,
    render_chat,
    timestamps_sentence,
    to_pil_images,
)

# Qwen's own chat template: the video's placeholder tokens, and the system turn it adds by default.
VIDEO_TOKEN = "<|vision_start|><|video_pad|><|vision_end|>"
DEFAULT_SYSTEM = "You are a helpful assistant."


def qwen_messages(
    selection: Any, question: str, *, timestamps_in_prompt: bool = True, system: str | None = None
) -> list[dict]:
    """Chat messages for ``processor.apply_chat_template``: one video placeholder, then the text."""
    clip = clip_from_selection(selection)
    return _messages({"type": "video"}, clip, question, timestamps_in_prompt, system)


def temporal_patch_times(timestamps_s: np.ndarray, temporal_patch_size: int) -> np.ndarray:
    """Seconds of each temporal patch: [k] -> [ceil(k / p)], the mean time of the p frames it
    holds (the last patch of an odd k holds the last frame repeated, as Qwen's processor pads)."""
    ts = np.asarray(timestamps_s, dtype=np.float64)
    pad = (-len(ts)) % temporal_patch_size
    padded = np.concatenate([ts, np.repeat(ts[-1:], pad)])
    return padded.reshape(-1, temporal_patch_size).mean(axis=1)


def seconds_per_grid(timestamps_s: np.ndarray, temporal_patch_size: int) -> float:
    """Qwen2.5-VL's ``second_per_grid_ts`` for frames at ``timestamps_s``: the mean spacing of the
    temporal patches (first to last patch), so the model's time axis spans the real time the
    selection covers. One patch (k <= p): ``p`` seconds per patch (1 fps), a neutral choice."""
    patch_t = temporal_patch_times(timestamps_s, temporal_patch_size)
    if len(patch_t) < 2 or patch_t[-1] <= patch_t[0]:
        return float(temporal_patch_size)
    return float((patch_t[-1] - patch_t[0]) / (len(patch_t) - 1))


def qwen_inputs(processor: Any, selection: Any, question: str, *, timestamps_in_prompt: bool = True,
                system: str | None = None, return_tensors: str = "pt") -> VideoModelInputs:
    """Processor inputs for Qwen2-VL / Qwen2.5-VL (``Qwen2VLProcessor``, ``Qwen2_5_VLProcessor`` or the
    ``AutoProcessor`` of either) holding exactly the selected frames, in time order.

    ``extra`` reports ``temporal_patch_size``, ``patch_times_s`` (seconds of each temporal patch)
    and, for Qwen2.5-VL, ``second_per_grid`` (the value written to ``second_per_grid_ts``).
    """
    clip = clip_from_selection(selection)
    inputs, messages, texts = qwen_batch_inputs(
        processor, [clip], [question], timestamps_in_prompt=timestamps_in_prompt, system=system,
        return_tensors=return_tensors,
    )  # fmt: skip
    patch = int(getattr(_video_processor(processor), "temporal_patch_size", 2))
    extra: dict[str, Any] = {
        "temporal_patch_size": patch,
        "patch_times_s": temporal_patch_times(clip.timestamps_s, patch),
    }
    if _is_qwen25(processor):
        extra["second_per_grid"] = seconds_per_grid(clip.timestamps_s, patch)
    return VideoModelInputs(
        inputs=inputs,
        messages=messages[0],
        text=texts[0],
        timestamps_s=clip.timestamps_s.copy(),
        num_frames=clip.num_frames,
        extra=extra,
    )


def qwen_batch_inputs(processor: Any, clips: list[SelectedClip], questions: list[str], *,
                      timestamps_in_prompt: bool = True, system: str | None = None, return_tensors: str = "pt",
                      **processor_kwargs: Any) -> tuple[Any, list[list[dict]], list[str]]:
    """The one Qwen prompt/input builder, for B selections at once (the plug-in: B = 1; the HF
    oracle: a GRPO group): -> (processor output, messages per row, rendered prompt per row).

    Per row: the real frame times as text, then the question; the frames as that row's video at
    their mean rate, never resampled; for Qwen2.5-VL ``second_per_grid_ts`` float[B] from the real
    times. ``processor_kwargs`` (e.g. ``padding=True``) go to the processor call."""
    video_processor = _video_processor(processor)
    patch = int(getattr(video_processor, "temporal_patch_size", 2))
    messages = [qwen_messages(c, q, timestamps_in_prompt=timestamps_in_prompt, system=system)
                for c, q in zip(clips, questions, strict=True)]  # fmt: skip
    texts = [render_chat(processor, m, VIDEO_TOKEN, DEFAULT_SYSTEM) for m in messages]
    inputs = processor(
        text=texts,
        videos=[c.frames for c in clips],
        video_metadata=[_metadata(c) for c in clips],
        do_sample_frames=False,  # the frames are already the selection: never resample them
        return_tensors=return_tensors,
        **processor_kwargs,
    )
    if _is_qwen25(processor):
        inputs["second_per_grid_ts"] = _as_tensor([seconds_per_grid(c.timestamps_s, patch) for c in clips],
                                                  return_tensors)
    return inputs, messages, texts


def qwen_vl_utils_messages(
    selection: Any,
    question: str,
    *,
    timestamps_in_prompt: bool = True,
    system: str | None = None,
    **video_options: Any,
) -> list[dict]:
    """Messages in the ``qwen_vl_utils.process_vision_info`` format: the video as a list of PIL
    frames with ``"fps"`` set to the selection's mean frame rate (what Qwen2.5-VL's
    ``second_per_grid_ts`` is derived from); ``video_options`` (``max_pixels``, ``resized_height``,
    ...) are added to the video entry. Needs no ``qwen_vl_utils`` to build."""
    clip = clip_from_selection(selection)
    patch_fps = 2.0 / seconds_per_grid(clip.timestamps_s, 2)  # qwen_vl_utils assumes 2-frame patches
    video = {"type": "video", "video": to_pil_images(clip), "fps": patch_fps, **video_options}
    return _messages(video, clip, question, timestamps_in_prompt, system)


def qwen_vl_utils_inputs(
    processor: Any,
    selection: Any,
    question: str,
    *,
    timestamps_in_prompt: bool = True,
    system: str | None = None,
    **video_options: Any,
) -> VideoModelInputs:
    """Like :func:`qwen_inputs` but through ``qwen_vl_utils.process_vision_info`` (its resizing
    rules, ``max_pixels`` etc.), for code that already uses it. Needs ``pip install qwen-vl-utils``."""
    try:
        from qwen_vl_utils import process_vision_info
    except ImportError as err:
        raise ImportError(
            "qwen_vl_utils_inputs needs the qwen-vl-utils package: pip install qwen-vl-utils "
            "(or use tspo.plugins.qwen.qwen_inputs, which needs only transformers)"
        ) from err
    clip = clip_from_selection(selection)
    messages = qwen_vl_utils_messages(
        clip, question, timestamps_in_prompt=timestamps_in_prompt, system=system, **video_options
    )
    text = render_chat(processor, messages, VIDEO_TOKEN, DEFAULT_SYSTEM)
    images, videos, video_kwargs = process_vision_info(messages, return_video_kwargs=True)
    fps = float(video_kwargs["fps"][0])
    videos = [np.stack([np.asarray(f) for f in v]) if isinstance(v, list) else v for v in videos]
    num_fed = len(videos[0])
    metadata = {"total_num_frames": num_fed, "fps": fps, "frames_indices": list(range(num_fed))}
    inputs = processor(
        text=[text],
        images=images,
        videos=videos,
        video_metadata=[metadata],
        do_sample_frames=False,
        return_tensors="pt",
    )
    patch = int(getattr(_video_processor(processor), "temporal_patch_size", 2))
    extra: dict[str, Any] = {
        "temporal_patch_size": patch,
        "patch_times_s": temporal_patch_times(clip.timestamps_s, patch),
    }
    if _is_qwen25(processor):
        spg = patch / fps
        inputs["second_per_grid_ts"] = _as_tensor([spg], "pt")
        extra["second_per_grid"] = spg
    return VideoModelInputs(inputs, messages, text, clip.timestamps_s.copy(), clip.num_frames, extra)


def _messages(
    video: dict, clip: SelectedClip, question: str, with_times: bool, system: str | None
) -> list[dict]:
    question = check_question(question)
    return chat_messages(video, f"{timestamps_sentence(clip)}\n{question}" if with_times else question, system)


def _metadata(clip: SelectedClip) -> dict:
    # The frames handed over *are* the video: k frames at the selection's mean rate.
    height, width = clip.frames.shape[1:3]
    return {
        "total_num_frames": clip.num_frames,
        "fps": clip.mean_fps(),
        "frames_indices": list(range(clip.num_frames)),
        "duration": clip.span_s,
        "height": int(height),
        "width": int(width),
    }


def _video_processor(processor: Any) -> Any:
    video_processor = getattr(processor, "video_processor", None)
    if video_processor is None:
        raise AdapterInputError(
            f"{type(processor).__name__} has no video_processor; pass the Qwen2-VL / Qwen2.5-VL processor "
            "(AutoProcessor.from_pretrained('Qwen/Qwen2.5-VL-7B-Instruct'))"
        )
    return video_processor


def _is_qwen25(processor: Any) -> bool:
    return "second_per_grid_ts" in getattr(processor, "model_input_names", [])


def _as_tensor(values: list[float], return_tensors: str) -> Any:
    if return_tensors == "pt":
        import torch

        return torch.tensor(values, dtype=torch.float32)
    return np.asarray(values, dtype=np.float32)


__all__ = [
    "qwen_batch_inputs",
    "qwen_inputs",
    "qwen_messages",
    "qwen_vl_utils_inputs",
    "qwen_vl_utils_messages",
    "seconds_per_grid",
    "temporal_patch_times",
]
