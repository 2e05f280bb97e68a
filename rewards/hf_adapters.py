"""Model families of :class:`HFVideoLLMOracle`: which prompt/input builder a model type uses.

Keyed by ``model.config.model_type``. The builders are the plug-ins' own
(:func:`tspo.plugins.qwen.qwen_batch_inputs`, :func:`tspo.plugins.llava.llava_batch_inputs`), so the
oracle a selector is trained against sees exactly the prompt, frame layout and time encoding the
deployed adapter gives the same model: the real frame times as text, the frames as the video at
their mean rate, never resampled, and for Qwen2.5-VL ``second_per_grid_ts`` from the real times.
The oracle adds only the lettered options and the answer instruction (``answer_suffix``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tspo.plugins.llava import llava_batch_inputs
from tspo.plugins.qwen import qwen_batch_inputs

from .errors import OracleConfigError
from .oracle import OracleQuery, query_clip, question_text


@dataclass(frozen=True)
class VideoLLMAdapter:
    """How one model family takes a batch of video questions: ``build(processor, clips, texts,
    timestamps_in_prompt=..., padding=True)`` -> (processor output, messages, prompts)."""

    model_type: str
    build: Callable[..., tuple[Any, list, list[str]]]

    def inputs(self, processor: Any, queries: list[OracleQuery], with_timestamps: bool = True) -> Any:
        """Processor output for a batch of queries (padded on the tokenizer's padding side)."""
        clips = [query_clip(q) for q in queries]
        batch, _, _ = self.build(processor, clips, [question_text(q) for q in queries],
                                 timestamps_in_prompt=with_timestamps, padding=True)
        return batch


ADAPTERS: dict[str, VideoLLMAdapter] = {
    "qwen2_vl": VideoLLMAdapter("qwen2_vl", qwen_batch_inputs),
    "qwen2_5_vl": VideoLLMAdapter("qwen2_5_vl", qwen_batch_inputs),
    "llava_onevision": VideoLLMAdapter("llava_onevision", llava_batch_inputs),
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
