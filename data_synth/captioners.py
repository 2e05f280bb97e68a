"""Pluggable captioners for QA augmentation: ``describe(sample) -> list[EventDescription]``.

- :class:`AnnotationCaptioner` reuses captions a dataset already has (``extra["captions"]`` as
  ``[[start_s, end_s, text], ...]``, or the rendered ground truth ``extra["events"]``).
- :class:`HFCaptioner` captions frames every ``every_s`` seconds with any transformers image-text
  model (BLIP, Qwen2-VL, LLaVA-style; ``AutoModelForImageTextToText``) and merges repeats.
"""

from __future__ import annotations

import numpy as np

from tspo.manifest import Sample
from tspo.settings import DEFAULT_FRAME_SIZE
from tspo.video import read_whole_frames

from .events import events_from_extra
from .qa import EventDescription, QAError, merge_descriptions


class AnnotationCaptioner:
    """Descriptions from the sample's own annotations; no model, no decoding."""

    def describe(self, sample: Sample) -> list[EventDescription]:
        if "captions" in sample.extra:
            caps = sample.extra["captions"]
            try:
                events = [EventDescription(float(a), float(b), str(t)) for a, b, t in caps]
            except (TypeError, ValueError):
                raise QAError(f"sample {sample.id!r}: extra['captions'] must be [[start_s, end_s, text], ...]") from None
        elif "events" in sample.extra:
            events = [EventDescription(float(e.start_s), float(e.end_s), e.describe())
                      for e in events_from_extra(sample.extra)]
        else:
            raise QAError(f"sample {sample.id!r} has no annotations (extra['captions'] or extra['events']); "
                          "use a model captioner (HFCaptioner) instead")
        return merge_descriptions(events)


class HFCaptioner:
    """Caption frames sampled every ``every_s`` seconds with a transformers image-text model.

    ``model``/``processor``: e.g. ``BlipForConditionalGeneration`` + ``BlipProcessor``. ``prompt``:
    optional text prefix (for chat-style models, a prompt the processor accepts). Greedy decoding,
    so captions are deterministic.
    """

    def __init__(self, model, processor, every_s: float = 2.0, prompt: str | None = None,
                 max_new_tokens: int = 24, frame_size: int = DEFAULT_FRAME_SIZE, batch_size: int = 8) -> None:
        if every_s <= 0 or batch_size < 1 or max_new_tokens < 1:
            raise ValueError("every_s must be > 0, batch_size and max_new_tokens >= 1")
        self.model, self.processor = model.eval(), processor
        self.every_s, self.prompt = float(every_s), prompt
        self.max_new_tokens, self.frame_size, self.batch_size = max_new_tokens, frame_size, batch_size

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str = "cpu", **kwargs) -> HFCaptioner:
        """Load processor + model (``AutoModelForImageTextToText``) from a hub id or local directory."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(name_or_path)
            model = AutoModelForImageTextToText.from_pretrained(name_or_path).to(device)
        except (OSError, ValueError) as exc:
            raise QAError(f"could not load an image-text model from {name_or_path!r} ({exc}); pass a local "
                          "directory or a cached hub id of an image-to-text model (e.g. BLIP)") from None
        return cls(model, processor, **kwargs)

    def caption_frames(self, frames: np.ndarray) -> list[str]:
        """uint8[n, H, W, 3] -> n captions (greedy)."""
        import torch

        out: list[str] = []
        device = next(self.model.parameters()).device
        for lo in range(0, len(frames), self.batch_size):
            images = list(frames[lo: lo + self.batch_size])
            kwargs = {"text": [self.prompt] * len(images)} if self.prompt else {}
            inputs = self.processor(images=images, return_tensors="pt", **kwargs).to(device)
            with torch.no_grad():
                ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            texts = self.processor.batch_decode(ids, skip_special_tokens=True)
            if self.prompt:  # decoder-only models echo the prompt
                texts = [t[len(self.prompt):] if t.startswith(self.prompt) else t for t in texts]
            out += [" ".join(t.split()) or "nothing visible" for t in texts]
        return out

    def describe(self, sample: Sample) -> list[EventDescription]:
        times = np.arange(0.0, sample.duration_s, self.every_s)
        frames = read_whole_frames(sample.video, times, self.frame_size)    # whole frames, as every MLLM gets
        captions = self.caption_frames(frames)
        ends = np.minimum(times + self.every_s, sample.duration_s)
        return merge_descriptions([EventDescription(float(a), float(b), c) for a, b, c in zip(times, ends, captions)])
