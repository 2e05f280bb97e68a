"""Adapters that feed a tspo selection to downstream video LLMs, untouched by training.

- :mod:`tspo.plugins.qwen` — Qwen2-VL / Qwen2.5-VL (transformers processors; ``qwen_vl_utils`` input)
- :mod:`tspo.plugins.llava` — LLaVA-OneVision / LLaVA-Video (transformers processors)
- :mod:`tspo.plugins.generic` — any image-list MLLM ("Frame at 12.0 s: <image>") and
  OpenAI-compatible chat messages with base64 frames
- :mod:`tspo.plugins.lmms_eval` — an lmms-eval model plug-in (``LMMS_EVAL_PLUGINS=tspo.plugins.lmms_eval``)
- :mod:`tspo.plugins.tiny` — tiny random models + processors built offline (tests, examples)

Every adapter takes a :class:`tspo.Selection` made with ``return_frames=True`` (or a
:class:`SelectedClip`) and hands the model exactly those frames, in time order, with their real
timestamps. Submodules import transformers lazily: ``import tspo.plugins`` stays cheap.
"""

from __future__ import annotations

from tspo.plugins._clip import (
    AdapterInputError,
    SelectedClip,
    VideoModelInputs,
    clip_from_selection,
    make_clip,
)

__all__ = ["AdapterInputError", "SelectedClip", "VideoModelInputs", "clip_from_selection", "make_clip"]
