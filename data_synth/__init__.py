"""Training data for TSPO (DESIGN.md §8): manifests, synthetic videos, needle composer, filters, QA.

Heavy optional parts (transformers captioner) load lazily; ``tspo synth ...`` is the CLI.
"""

from .captioners import AnnotationCaptioner, HFCaptioner
from .events import QUESTION_KINDS, ClipTruth, Event, RenderError, events_from_extra, make_clip_truth
from .features import CompositionError, compose_features, sample_features
from .filter import FilterReport, filter_samples, uniform_timestamps
from .manifest import ManifestError, Sample, iter_manifest, load_manifest, parse_sample, write_manifest
from .media import SourceError, materialize, probe_source
from .needle import (
    TARGET_ORDERS,
    NeedleConfig,
    NeedleReport,
    SynthError,
    compose_needles,
    find_videos,
    locate,
    merge_spans,
)
from .qa import EventDescription, QAError, augment_sample, augment_samples, make_mcq
from .render import event_frames, render_dataset, render_distractor, render_target_clip, write_video

__all__ = [
    "QUESTION_KINDS", "TARGET_ORDERS", "AnnotationCaptioner", "ClipTruth", "HFCaptioner", "QAError", "augment_samples", "CompositionError", "Event", "EventDescription", "FilterReport",
    "ManifestError", "NeedleConfig", "NeedleReport", "RenderError", "Sample", "SourceError", "SynthError",
    "augment_sample", "compose_features", "compose_needles", "event_frames", "events_from_extra",
    "filter_samples", "find_videos", "iter_manifest", "load_manifest", "locate", "make_clip_truth",
    "make_mcq", "materialize", "merge_spans", "parse_sample", "probe_source", "render_dataset", "render_distractor",
    "render_target_clip", "sample_features", "uniform_timestamps", "write_manifest", "write_video",
]
