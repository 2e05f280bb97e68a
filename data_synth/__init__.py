"""Training data for TSPO: manifests, synthetic videos, needle composer, filters, QA.

Heavy optional parts (transformers captioner) load lazily; ``tspo synth ...`` is the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public names resolve lazily (like ``tspo``'s): ``import tspo.data_synth.events`` must not pull in
# the renderer, the needle composer or the filter. The manifest schema lives in core
# (``tspo.manifest``: every video, synthetic or not, is listed in one); it is re-exported here.
_LAZY = {
    "AnnotationCaptioner": "captioners",
    "ClipTruth": "events",
    "Event": "events",
    "EventDescription": "qa",
    "FilterReport": "filter",
    "HFCaptioner": "captioners",
    "ManifestError": "tspo.manifest",
    "NeedleConfig": "needle",
    "NeedleReport": "needle",
    "QAError": "qa",
    "QUESTION_KINDS": "events",
    "RenderError": "events",
    "Sample": "tspo.manifest",
    "SourceError": "media",
    "SynthError": "needle",
    "TARGET_ORDERS": "needle",
    "augment_sample": "qa",
    "augment_samples": "qa",
    "compose_needles": "needle",
    "event_frames": "render",
    "events_from_extra": "events",
    "filter_samples": "filter",
    "find_videos": "needle",
    "iter_manifest": "tspo.manifest",
    "load_manifest": "tspo.manifest",
    "locate": "needle",
    "make_clip_truth": "events",
    "make_mcq": "qa",
    "materialize": "media",
    "merge_spans": "needle",
    "parse_sample": "tspo.manifest",
    "probe_source": "media",
    "render_dataset": "render",
    "render_distractor": "render",
    "render_target_clip": "render",
    "uniform_timestamps": "filter",
    "write_manifest": "tspo.manifest",
    "write_video": "render",
}

__all__ = [
    "QUESTION_KINDS", "TARGET_ORDERS", "AnnotationCaptioner", "ClipTruth", "HFCaptioner", "QAError", "augment_samples", "Event", "EventDescription", "FilterReport",
    "ManifestError", "NeedleConfig", "NeedleReport", "RenderError", "Sample", "SourceError", "SynthError",
    "augment_sample", "compose_needles", "event_frames", "events_from_extra",
    "filter_samples", "find_videos", "iter_manifest", "load_manifest", "locate", "make_clip_truth",
    "make_mcq", "materialize", "merge_spans", "parse_sample", "probe_source", "render_dataset", "render_distractor",
    "render_target_clip", "uniform_timestamps", "write_manifest", "write_video",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = _LAZY[name] if _LAZY[name].startswith("tspo.") else f"{__name__}.{_LAZY[name]}"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
