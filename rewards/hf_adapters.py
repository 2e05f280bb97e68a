"""Per-model-family glue for :class:`HFVideoLLMOracle`: prompt layout and processor arguments.

Keyed by ``model.config.model_type``. An adapter says how the video goes into the chat text
(when the processor carries no chat template) and which extra processor arguments a family needs
(Qwen2.5-VL aligns its temporal rotary positions to seconds, so it gets the selection's mean
frame rate; every family gets ``do_sample_frames=False`` so the processor never resamples). The frame timestamps themselves always go into the prompt text, because a learned
selection is not evenly spaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import OracleConfigError
from .oracle import OracleQuery

QWEN_FALLBACK = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>{text}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
LLAVA_OV_FALLBACK = "<|im_start|>user <video>\n{text}<|im_end|>\n<|im_start|>assistant\n"


def mean_fps(timestamps_s: np.ndarray) -> float:
    """Frames per second of a selection on average ((k-1) / span); 1.0 for one frame or a zero span."""
    span = float(timestamps_s[-1] - timestamps_s[0]) if timestamps_s.size > 1 else 0.0
    return (timestamps_s.size - 1) / span if span > 0 else 1.0


@dataclass(frozen=True)
class VideoLLMAdapter:
    """How one model family takes a video question.

    ``fallback_template``: chat text with ``{text}`` when the processor has no chat template.
    ``pass_video_metadata``: give the processor each video's mean fps (Qwen2.5-VL's mRoPE uses it).
    """

    model_type: str
    fallback_template: str
    pass_video_metadata: bool = False

    def chat_text(self, processor: Any, text: str) -> str:
        """The full prompt for one query, ending where the assistant's answer begins."""
        if getattr(processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
            return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.fallback_template.format(text=text)

    def processor_kwargs(self, queries: list[OracleQuery]) -> dict[str, Any]:
        """Extra processor arguments for a batch of queries.

        ``do_sample_frames=False`` always: the k frames *are* the selection, so a processor
        config with frame sampling on (``num_frames`` / ``fps``) must never resample them.
        """
        kwargs: dict[str, Any] = {"do_sample_frames": False}
        if self.pass_video_metadata:
            kwargs["video_metadata"] = [
                {
                    "total_num_frames": q.num_frames,
                    "fps": mean_fps(q.timestamps_s),
                    "frames_indices": list(range(q.num_frames)),
                    "duration": float(q.timestamps_s[-1] - q.timestamps_s[0]),
                }
                for q in queries
            ]
        return kwargs


ADAPTERS: dict[str, VideoLLMAdapter] = {
    "qwen2_vl": VideoLLMAdapter("qwen2_vl", QWEN_FALLBACK),
    "qwen2_5_vl": VideoLLMAdapter("qwen2_5_vl", QWEN_FALLBACK, pass_video_metadata=True),
    "llava_onevision": VideoLLMAdapter("llava_onevision", LLAVA_OV_FALLBACK),
}


def adapter_for(model_type: str | None) -> VideoLLMAdapter:
    """The adapter for ``model_type``, or an :class:`OracleConfigError` listing the supported ones."""
    if model_type not in ADAPTERS:
        raise OracleConfigError(
            f"HFVideoLLMOracle has no adapter for model_type={model_type!r}; supported: {sorted(ADAPTERS)}. "
            "Add a VideoLLMAdapter to tspo.rewards.hf_adapters.ADAPTERS, or serve the model behind an "
            "OpenAI-compatible endpoint and use OpenAICompatibleOracle"
        )
    return ADAPTERS[model_type]
