"""Frame selection at inference: ``select_frames(video, question)`` and :class:`TSPOSelector`.

A selector is a frozen CLIP encoder plus a (trained) agent of one family (:mod:`tspo.agents.families`:
the paper's :class:`~tspo.agents.TemporalAgent`, or the question-conditioned
:class:`~tspo.agents.FilterAgent`). It is saved as ``model.safetensors`` (the agent's weights) +
``config.json`` (encoder spec, agent family and shape, sampling defaults and selection method), like a
Hugging Face model directory. A multiple-choice question may pass its ``options``: agents that read them
(the filter family) look for them too.

Every call's ``method=None`` is the selector's own method (:attr:`TSPOSelector.method`): the one stored in
its ``config.json``, else its agent family's (:func:`tspo.agents.families.default_method`: ``tspo`` for the
paper's agent, ``tspo+shot`` for the filter family). :attr:`Selection.method` names the method used.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tspo.agents import AgentConfigError, TemporalAgent, build_agent, family_of, get_method
from tspo.errors import TSPOError
from tspo.features.cache import FeatureCache, VideoFeatures, video_features
from tspo.features.encoder_cache import CachedEncoder, cached_encoder
from tspo.features.encoders import ClipEncoder, load_encoder
from tspo.selection.clips import UNITS, ClipConfig, clips_from_scores, plan_for_video
from tspo.selection.hub import push_to_hub, resolve_pretrained
from tspo.selection.zoom import (
    STRATEGIES,
    FeatureSource,
    VideoFeatureSource,
    ZoomConfig,
    ZoomResult,
    demote_scores,
    zoom_select,
)
from tspo.settings import DEFAULT_ENCODER, SelectionSettings, clip_num_frames
from tspo.token_budget import DEFAULT_TOKEN_MODEL
from tspo.video import (
    VideoLike,
    plan_candidates,
    presentation_times,
    read_whole_frames,
    segments_at,
    source_frame_indices,
)

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "tspo-selector"
FORMAT_VERSION = 1


class SelectorConfigError(TSPOError, ValueError):
    """A selector directory whose config or weights cannot be used."""


class SelectorWeightsError(SelectorConfigError):
    """A selector's ``model.safetensors`` that cannot be read (truncated or corrupted file)."""


@dataclass(frozen=True)
class ZoomTrace:
    """What a coarse-to-fine selection (``strategy="zoom"``, :mod:`tspo.selection.zoom`) visited."""

    spans_s: np.ndarray  # float64[S, 2] spans visited [start, end) seconds, best first
    frames_encoded: int  # frames this selection had to encode (cache hits excluded)
    duration_s: float  # the video's length in seconds (zoom's candidates do not tell it)


@dataclass(frozen=True)
class ClipTrace:
    """How a ``unit="clip"`` selection (:mod:`tspo.selection.clips`) grew its k picks into clips."""

    spans_s: np.ndarray  # float64[C, 2] first and last frame time of each clip, seconds
    ids: np.ndarray  # int64[n] clip of each picked frame (0..C-1, time order)
    token_plan: Any  # tspo.token_budget.FramePlan: frames, frame size, tokens vs budget


# Selection's flat names of the traces' fields (tspo <= 0.5), read through with a DeprecationWarning
_MOVED_FIELDS = {"spans_s": ("zoom", "spans_s"), "frames_encoded": ("zoom", "frames_encoded"),
                 "duration_s": ("zoom", "duration_s"), "clip_spans_s": ("clips", "spans_s"),
                 "clip_ids": ("clips", "ids"), "token_plan": ("clips", "token_plan")}


@dataclass(repr=False)
class Selection:
    """The frames picked for one (video, question). ``k`` picks out of ``T`` candidates."""

    indices: np.ndarray  # int64[k] frame indices in the source video, ascending
    positions: np.ndarray  # int64[k] positions in the candidate list
    timestamps: np.ndarray  # float64[k] seconds: when each picked frame is presented (its pts on the timeline)
    scores: np.ndarray | None  # float32[T] score of every candidate (None for uniform)
    candidate_timestamps: np.ndarray  # float64[T] seconds
    frames: np.ndarray | None  # uint8[k, H, W, 3] whole frames (short side = frame_size) when asked for
    method: str
    num_candidates: int
    # Virtual videos only (None for a file): the segment each pick came from (int64[k], position in
    # the segment list) and that segment's source file. ``indices`` are then frame indices *in that
    # source*, so (segment_ids[i], indices[i]) names a frame even when a clip is listed twice.
    segment_ids: np.ndarray | None = None
    sources: list[str] | None = None
    # strategy="zoom": candidates are every frame encoded (coarse + fine), T of them; what it visited
    zoom: ZoomTrace | None = None
    # unit="clip": the picks grown into clips within a visual-token budget
    clips: ClipTrace | None = None

    @property
    def strategy(self) -> str:
        """``"zoom"`` (coarse-to-fine, :attr:`zoom` says what it visited) or ``"single"``."""
        return "single" if self.zoom is None else "zoom"

    @property
    def unit(self) -> str:
        """``"clip"`` (frames grouped into clips, :attr:`clips`) or ``"frame"``."""
        return "frame" if self.clips is None else "clip"

    def __getattr__(self, name: str) -> Any:
        # only reached for names that are not fields: the flat names of the traces, kept readable
        if name in _MOVED_FIELDS:
            trace, field = _MOVED_FIELDS[name]
            warnings.warn(f"Selection.{name} is deprecated; read Selection.{trace}.{field} "
                          f"(None when the selection is not {'a zoom' if trace == 'zoom' else 'a clip'} selection)",
                          DeprecationWarning, stacklevel=2)
            value = getattr(self, trace)
            return None if value is None else getattr(value, field)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        times = ", ".join(f"{t:.1f}" for t in self.timestamps[:8]) + (", ..." if len(self.timestamps) > 8 else "")
        frames = "" if self.frames is None else f", frames={tuple(self.frames.shape)}"
        return (f"Selection(method={self.method!r}, k={len(self.indices)} of {self.num_candidates}, "
                f"timestamps_s=[{times}]{frames})")  # fmt: skip

    def clip_list(self) -> list[dict[str, Any]]:
        """``unit="clip"``: each clip in time order as ``{start_s, end_s, timestamps_s float64[n_c],
        indices int64[n_c] (source frames), positions int64[n_c], frames uint8[n_c, H, W, 3] | None}``."""
        if self.clips is None:
            raise ValueError(f"this selection picked frames (unit={self.unit!r}); select with unit='clip' for clips")
        out = []
        for c, (start, end) in enumerate(self.clips.spans_s):
            member = self.clips.ids == c
            out.append({"start_s": float(start), "end_s": float(end), "timestamps_s": self.timestamps[member],
                        "indices": self.indices[member], "positions": self.positions[member],
                        "frames": None if self.frames is None else self.frames[member]})
        return out

    def to_dict(self, scores: bool = False) -> dict[str, Any]:
        """JSON-ready summary (what ``tspo select --json`` prints); ``scores=True`` adds every
        candidate's time (s) and score (``null`` scores for uniform, which has none)."""
        out: dict[str, Any] = {
            "indices": [int(i) for i in self.indices],
            "timestamps": [round(float(t), 3) for t in self.timestamps],
            "method": self.method,
            "num_candidates": int(self.num_candidates),
        }
        if self.segment_ids is not None:
            out["segment_ids"] = [int(i) for i in self.segment_ids]
            out["sources"] = list(self.sources or [])
        if scores:
            out["candidate_timestamps"] = [round(float(t), 3) for t in self.candidate_timestamps]
            out["scores"] = None if self.scores is None else [round(float(v), 6) for v in self.scores]
        if self.zoom is not None:
            out.update(strategy=self.strategy, frames_encoded=self.zoom.frames_encoded,
                       spans_s=[[round(float(a), 3), round(float(b), 3)] for a, b in self.zoom.spans_s])
        if self.clips is not None:
            p = self.clips.token_plan
            out.update(unit="clip", clips_s=[[round(float(a), 3), round(float(b), 3)] for a, b in self.clips.spans_s],
                       clip_ids=[int(i) for i in self.clips.ids], token_model=p.model, tokens=p.tokens,
                       token_budget=p.budget, frame_size=p.frame_size, frame_hw=[p.height, p.width])
        return out


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r}")
    return question.strip()


def _check_options(options: list[str] | tuple[str, ...] | None) -> list[str] | None:
    """A multiple-choice question's option texts, stripped; None or [] is "no options"."""
    if options is None:
        return None
    if isinstance(options, str) or not isinstance(options, (list, tuple)):
        raise ValueError(f"options must be a list of option texts (e.g. ['the red circle', 'the blue square']) "
                         f"or None, got {options!r}")
    bad = [o for o in options if not isinstance(o, str) or not o.strip()]
    if bad:
        raise ValueError(f"options must be non-empty strings, got {bad!r} in {list(options)!r}")
    return [o.strip() for o in options] or None


class TSPOSelector:
    """Frozen encoder + temporal agent; picks the k candidate frames that matter for a question.

    ``encoder``: a spec string (``"ViT-L-14:openai"``, ``"MODEL:/path/weights.bin"``,
    ``"tiny-random"``) or a loaded :class:`~tspo.features.encoders.ClipEncoder`. ``agent``: a trained
    :class:`TemporalAgent`; ``None`` builds an untrained one, whose scores rank frames exactly as
    CLIP similarity does (its MLP output starts at zero). ``cache``: where candidate features are
    kept between calls (default: an on-disk :class:`FeatureCache`; ``False`` disables it).
    ``settings``: the :class:`~tspo.settings.SelectionSettings` every call falls back to (saved with
    the selector); ``num_frames`` / ``fps`` / ``max_candidates`` / ``frame_size`` / ``method`` replace
    single fields of it (None keeps the value). A method left None everywhere is the agent family's own
    (``tspo`` for the paper's agent, ``tspo+shot`` for the filter family); :attr:`method` says which.
    """

    def __init__(
        self,
        encoder: str | ClipEncoder | CachedEncoder = DEFAULT_ENCODER,
        agent: TemporalAgent | None = None,
        window: int = 12,
        heads: int = 8,
        device: str | torch.device = "cpu",
        cache: FeatureCache | None | bool = None,
        settings: SelectionSettings | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        max_candidates: int | None = None,
        frame_size: int | None = None,
        extra_config: dict[str, Any] | None = None,
        method: str | None = None,
    ) -> None:
        self.cache = FeatureCache() if cache is None or cache is True else (cache or None)
        if isinstance(encoder, str):
            # With a cache, the encoder's card and text embeddings live beside the features, so a
            # question about a cached video never builds the CLIP model (tspo.features.encoder_cache).
            encoder = cached_encoder(encoder, self.cache.root, device) if self.cache else load_encoder(encoder, device)
        self.encoder = encoder
        if agent is None:
            agent = TemporalAgent(dim=self.encoder.dim, window=window, heads=heads)
        elif agent.dim != self.encoder.dim:
            raise SelectorConfigError(
                f"agent dim {agent.dim} does not match encoder {self.encoder.spec!r} dim {self.encoder.dim}; "
                "use the encoder the agent was trained with"
            )
        self.agent = agent.to(self.encoder.device).eval()
        if settings is not None and not isinstance(settings, SelectionSettings):
            raise TypeError(f"settings must be a tspo.settings.SelectionSettings, got {type(settings).__name__}")
        self.settings = (settings or SelectionSettings()).override(num_frames, fps, max_candidates, frame_size, method)
        # stored so config.json names the method: the one named (checked against the method registry, an
        # unknown name lists the choices), else the agent family's own (method_for, the one rule)
        self.settings = self.settings.override(method=self.method)
        self.extra_config = dict(extra_config or {})

    def __repr__(self) -> str:
        return (f"TSPOSelector(encoder={self.encoder.spec!r}, agent={self.agent.config}, settings={self.settings}, "
                f"cache={self.cache})")

    # The settings' fields, read-only: change them with ``selector.settings = settings.override(...)``.
    num_frames = property(lambda self: self.settings.num_frames)
    fps = property(lambda self: self.settings.fps)
    max_candidates = property(lambda self: self.settings.max_candidates)
    frame_size = property(lambda self: self.settings.frame_size)

    @property
    def method(self) -> str:
        """The selection method every call that names none uses: the settings' (saved in ``config.json``),
        else the agent family's own (``agent.default_method``: ``tspo``, ``tspo+shot`` for the filter family)."""
        return self.method_for(None)

    def method_for(self, method: str | None) -> str:
        """``method`` when given (checked against the method registry), else :attr:`method`."""
        if method is None:
            method = self.settings.method if self.settings.method is not None else self.agent.default_method
        return get_method(method).name

    @property
    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "encoder": self.encoder.spec,
            "agent": self.agent.config,
            **self.settings.to_config(),
            **self.extra_config,
        }

    # -- scoring -------------------------------------------------------------------------------
    def features(self, video: VideoLike, fps: float | None = None, max_candidates: int | None = None) -> VideoFeatures:
        """Candidate features ``[T, D]`` of a video (cached) on the settings' grid (None: the selector's)."""
        grid = self.settings.override(fps=fps, max_candidates=max_candidates)
        return video_features(video, self.encoder, grid.fps, grid.max_candidates, self.cache)

    def encode_options(self, options: list[str] | tuple[str, ...] | None) -> torch.Tensor | None:
        """Text embeddings ``[N, D]`` of a multiple-choice question's options (None: no options)."""
        options = _check_options(options)
        if options is None:
            return None
        return self.encoder.encode_texts(options).to(self.encoder.device, torch.float32)

    @torch.no_grad()
    def score(self, features: torch.Tensor, question: str, method: str | None = None,
              options: list[str] | None = None) -> torch.Tensor:
        """Per-candidate scores ``[T]`` of the method's scorer (``tspo.agents.methods``): the agent's S
        for ``tspo`` / ``tspo+aks`` / ``tspo+nms``, CLIP cosine similarity for ``clip`` / ``bin-max`` / ``aks``
        (None: :attr:`method`). ``options``: the question's option texts (multiple choice), read by the
        filter family."""
        method = self.method_for(method)
        m = get_method(method)
        if not m.needs_scores:
            raise ValueError(f"method {method!r} has no scores (its rule {m.rule!r} looks only at the grid)")
        return self._score_text(features, self._question_text(question), m, options)

    def _question_text(self, question: str) -> torch.Tensor:
        """The question's text embedding [D] on the encoder's device."""
        return self.encoder.encode_text(_check_question(question)).to(self.encoder.device)

    @torch.no_grad()
    def _score_text(self, features: torch.Tensor, text: torch.Tensor, m: Any,
                    options: list[str] | None) -> torch.Tensor:
        """:meth:`score` with the question already embedded (text [D]) and the method resolved."""
        options = _check_options(options)
        reads = m.needs_agent and getattr(self.agent, "reads_options", False)  # others would ignore them
        return m.score(self.agent, features.to(self.encoder.device, torch.float32), text,
                       self.encode_options(options) if reads else None).cpu()

    def select_from_features(
        self, features: torch.Tensor, question: str, num_frames: int | None = None, method: str | None = None,
        options: list[str] | None = None, suppress: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Positions ``int64[k]`` (ascending) of the chosen candidates, and the scores ``[T]``
        (``num_frames`` None: the selector's k; ``method`` None: :attr:`method`). The one single-stage
        strategy: ``tspo select``, eval and reflection all pick here. A set-aware rule (``tspo+shot``, ``tspo+nms``) takes
        its suppression radius from the agent's set head when it has one (the filter family). ``suppress``:
        bool[T], candidates already inspected (reflection) — picked only after every other one (k is
        clipped to the rest; a rule without scores draws from the rest)."""
        num = int(features.shape[0])
        k = self._clip_k(self.settings.override(num_frames=num_frames).num_frames, num)
        m = get_method(self.method_for(method))
        blocked = np.zeros(num, dtype=bool) if suppress is None else np.asarray(suppress, dtype=bool)
        if blocked.shape != (num,):
            raise ValueError(f"suppress must be bool[T] with T={num} candidates, got shape {blocked.shape}")
        k = min(k, int((~blocked).sum()))
        if not m.needs_scores:  # uniform over what is left
            free = np.flatnonzero(~blocked)
            return torch.from_numpy(free[m.pick(None, len(free), k).numpy()]), None
        text = self._question_text(question)
        scores = self._score_text(features, text, m, options)
        radius = m.set_radius(self.agent, text)  # the agent's set head, when it has one (tspo+nms, filter family)
        return m.pick(demote_scores(scores, blocked), num, k, radius, features=features.float().cpu(),
                      cut_distance=self.settings.cut_distance), scores

    @staticmethod
    def _clip_k(k: int, num_candidates: int) -> int:
        k, warning = clip_num_frames(k, num_candidates)
        if warning:
            warnings.warn(warning, stacklevel=3)
        return k

    # -- selection -------------------------------------------------------------------------------
    def select(
        self,
        video: VideoLike,
        question: str,
        num_frames: int | None = None,
        method: str | None = None,
        fps: float | None = None,
        max_candidates: int | None = None,
        return_frames: bool = False,
        frame_size: int | tuple[int, int] | None = None,
        strategy: str = "single",
        zoom: ZoomConfig | None = None,
        unit: str = "frame",
        token_budget: int | None = None,
        model: Any = DEFAULT_TOKEN_MODEL,
        clips: ClipConfig | None = None,
        options: list[str] | None = None,
    ) -> Selection:
        """Pick ``num_frames`` frames of ``video`` for ``question`` (see :func:`select_frames`); every
        argument left None takes the selector's :attr:`settings` (``method``: :attr:`method`, the one
        :attr:`Selection.method` then names)."""
        question = _check_question(question)
        settings = self.settings.override(num_frames, fps, max_candidates, frame_size, method)
        k, fps, max_candidates = settings.num_frames, settings.fps, settings.max_candidates
        method = self.method_for(settings.method)
        m = get_method(method)
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
        if unit == "clip":
            if strategy != "single":
                raise ValueError(f"unit='clip' works on the single-stage candidates; strategy {strategy!r} is not "
                                 "supported with it (use strategy='single')")
            return self._select_clips(video, question, settings, method, token_budget, model, clips, return_frames,
                                      options)
        if strategy == "zoom":
            return self._select_zoom(video, question, k, method, zoom, return_frames, settings.frame_size, options)
        if strategy != "single":
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if not m.needs_scores:  # needs no pixels at all: plan the grid, decode only the picks
            times, _, frame_idx, _ = plan_candidates(video, fps, max_candidates)
            positions = m.pick(None, len(times), self._clip_k(k, len(times)))
            scores = None
        else:
            feats = self.features(video, fps, max_candidates)
            times, frame_idx = feats.timestamps_s, feats.frame_indices
            positions, score_t = self.select_from_features(feats.features, question, k, method, options)
            scores = score_t.numpy().astype(np.float32)
        positions = positions.numpy().astype(np.int64)
        timestamps = times[positions]
        frames = read_whole_frames(video, timestamps, settings.frame_size) if return_frames else None
        segment_ids, sources = segments_at(video, timestamps)
        return Selection(
            indices=frame_idx[positions].astype(np.int64),
            positions=positions,
            timestamps=timestamps,
            scores=scores,
            candidate_timestamps=np.asarray(times, dtype=np.float64),
            frames=frames,
            method=method,
            num_candidates=len(times),
            segment_ids=segment_ids,
            sources=sources,
        )

    def _select_clips(self, video: VideoLike, question: str, settings: SelectionSettings, method: str,
                      token_budget: int | None, model: Any, clips: ClipConfig | None, return_frames: bool,
                      options: list[str] | None = None) -> Selection:
        """Clip selection (:mod:`tspo.selection.clips`): the method's k picks are the anchors, grown into clips
        with the frames the token budget buys at a smaller size (:mod:`tspo.token_budget`)."""
        m = get_method(method)
        if not m.needs_scores:
            raise ValueError(f"unit='clip' grows clips around scored anchors; method {method!r} has no scores: use a "
                             "scored method (tspo, clip, bin-max, aks, tspo+aks)")
        feats = self.features(video, settings.fps, settings.max_candidates)
        times, frame_idx = feats.timestamps_s, feats.frame_indices
        num = len(times)
        text = self._question_text(question)
        scores = self._score_text(feats.features, text, m, options).numpy().astype(np.float32)
        plan = plan_for_video(video, settings.num_frames, settings.frame_size, token_budget, model, clips,
                              max_frames=num)
        picks = clips_from_scores(scores, self._clip_k(settings.num_frames, num), plan.num_frames, method,
                                  radius=m.set_radius(self.agent, text),  # the set head's, as single-stage
                                  features=feats.features.float().cpu(), cut_distance=settings.cut_distance)
        positions = picks.positions
        timestamps = times[positions]
        segment_ids, sources = segments_at(video, timestamps)
        return Selection(
            indices=frame_idx[positions].astype(np.int64), positions=positions, timestamps=timestamps, scores=scores,
            candidate_timestamps=np.asarray(times, dtype=np.float64),
            frames=read_whole_frames(video, timestamps, plan.frame_size) if return_frames else None,
            method=method, num_candidates=num, segment_ids=segment_ids, sources=sources,
            clips=ClipTrace(picks.spans_s(times), picks.clip_ids, plan),
        )

    def zoom_source(self, video: VideoLike) -> VideoFeatureSource:
        """Features of ``video`` at any seconds, encoded on demand through this selector's cache."""
        return VideoFeatureSource(video, self.encoder, self.cache)

    def select_zoom_from_source(self, source: FeatureSource, question: str, num_frames: int,
                                method: str | None = None, zoom: ZoomConfig | None = None,
                                suppress_s: np.ndarray | None = None,
                                options: list[str] | None = None) -> ZoomResult:
        """Coarse-to-fine selection over a feature source (:func:`tspo.selection.zoom.zoom_select`;
        ``method`` None: :attr:`method`). A set-aware rule (``tspo+shot``, ``tspo+nms``) over the pool takes its radius
        from the agent's set head, as single-stage selection does."""
        question = _check_question(question)
        method = self.method_for(method)
        m = get_method(method)
        text = self._question_text(question)
        return zoom_select(source, lambda f: self._score_text(f, text, m, options), num_frames, zoom, method,
                           suppress_s, radius=m.set_radius(self.agent, text), cut_distance=self.settings.cut_distance)

    def _select_zoom(self, video: VideoLike, question: str, k: int, method: str, zoom: ZoomConfig | None,
                     return_frames: bool, frame_size: int, options: list[str] | None = None) -> Selection:
        source = self.zoom_source(video)
        result = self.select_zoom_from_source(source, question, k, method, zoom, options=options)
        # zoom samples at grid seconds; report when the frames taken are really presented, as single-stage does
        timestamps = presentation_times(video, result.timestamps)
        segment_ids, sources = segments_at(video, timestamps)
        return Selection(
            indices=source_frame_indices(video, timestamps),
            positions=result.positions,
            timestamps=timestamps,
            scores=result.pool_scores,
            candidate_timestamps=presentation_times(video, result.pool_times),
            frames=read_whole_frames(video, timestamps, frame_size) if return_frames else None,
            method=method,
            num_candidates=len(result.pool_times),
            segment_ids=segment_ids,
            sources=sources,
            zoom=ZoomTrace(result.spans_s, result.frames_encoded, float(source.duration_s)),
        )

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, extra_config: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (agent weights only) into ``directory``."""
        return write_selector_dir(directory, self.agent, {**self.config, **(extra_config or {})})

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        encoder: str | ClipEncoder | None = None,
        device: str | torch.device = "cpu",
        cache: FeatureCache | None | bool = None,
    ) -> TSPOSelector:
        """Load a selector directory written by :meth:`save_pretrained` (or a hub id ``org/name``).

        ``encoder`` overrides the spec stored in the config (e.g. a local weights path for the
        same architecture); its dimension must match the agent's.
        """
        agent, config = load_selector_agent(name_or_path)
        known = {"format", "version", "encoder", "agent", *SelectionSettings.FIELDS}
        try:
            settings = SelectionSettings.from_config(config)
            if settings.method is not None:
                get_method(settings.method)
        except ValueError as err:
            raise SelectorConfigError(f"selector {str(name_or_path)!r}: bad selection settings in config.json: {err}") \
                from err
        return cls(
            encoder=encoder if encoder is not None else config["encoder"],
            agent=agent,
            device=device,
            cache=cache,
            settings=settings,
            extra_config={k: v for k, v in config.items() if k not in known},
        )

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload this selector (safetensors + config + model card) to the Hugging Face Hub."""
        return push_to_hub(self, repo_id, **kwargs)


def write_selector_dir(directory: str | os.PathLike, agent: TemporalAgent, config: dict[str, Any]) -> Path:
    """Write a selector directory: ``model.safetensors`` (the agent's weights, float32) and
    ``config.json`` (``config``, which must name the encoder spec and ``agent.config``)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "version": FORMAT_VERSION, **config, "agent": agent.config}
    state = {k: v.detach().float().cpu().contiguous() for k, v in agent.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def read_selector_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``config.json`` of a selector directory."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise SelectorConfigError(
            f"selector directory {str(directory)!r} has no {CONFIG_NAME}; it must be written by "
            "TSPOSelector.save_pretrained or `tspo train`"
        )
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SelectorConfigError(f"{str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise SelectorConfigError(f"{str(path)!r} is not a tspo selector config (expected \"format\": \"{FORMAT}\")")
    agent = config.get("agent")
    if not isinstance(config.get("encoder"), str) or not isinstance(agent, dict):
        raise SelectorConfigError(f"{str(path)!r} must name an 'encoder' spec and an 'agent' {{dim, window, heads}}")
    for field in ("dim", "window", "heads"):
        if not isinstance(agent.get(field), int) or agent[field] <= 0:
            raise SelectorConfigError(f"{str(path)!r}: agent.{field} must be a positive int, got {agent.get(field)!r}")
    try:
        family_of(agent)
    except AgentConfigError as err:
        raise SelectorConfigError(f"{str(path)!r}: {err}") from err
    return config


def resolve_selector_dir(name_or_path: str | os.PathLike) -> Path:
    """A selector directory on disk: a local folder as is, a hub id ``org/name`` via the HF cache."""
    directory = Path(name_or_path)
    if directory.is_dir():
        return directory
    if directory.exists() or str(name_or_path).count("/") != 1:
        raise SelectorConfigError(
            f"selector {str(name_or_path)!r} is not a directory; pass a folder written by "
            "save_pretrained / `tspo train`, or a hub id 'org/name'"
        )

    return Path(resolve_pretrained(str(name_or_path)))


def load_selector_agent(name_or_path: str | os.PathLike) -> tuple[TemporalAgent, dict[str, Any]]:
    """The trained agent and the validated config of a selector directory (or hub id), without
    loading its encoder (export and training warm starts need only the agent)."""
    from safetensors.torch import load_file

    directory = resolve_selector_dir(name_or_path)
    config = read_selector_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise SelectorConfigError(f"selector directory {str(directory)!r} has no {WEIGHTS_NAME}")
    try:
        state = load_file(str(weights))
    except Exception as err:  # safetensors raises its own error types for truncated / garbled files
        raise SelectorWeightsError(
            f"cannot read {str(weights)!r} ({type(err).__name__}: {err}); the file is damaged: copy or export "
            "the selector again"
        ) from err
    agent_cfg = config["agent"]
    try:
        agent = build_agent(agent_cfg)  # the family registry: the paper's agent when config names none
    except AgentConfigError as err:
        raise SelectorConfigError(f"selector {str(directory)!r}: {err}") from err
    expected = {k: tuple(v.shape) for k, v in agent.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        raise SelectorConfigError(
            f"weights in {str(weights)!r} do not match config agent {agent_cfg}: expected {expected}, got {got}"
        )
    agent.load_state_dict(state)
    return agent.eval(), config


_DEFAULT_SELECTORS: dict[str, TSPOSelector] = {}


def select_frames(
    video: VideoLike,
    question: str,
    num_frames: int | None = None,
    selector: TSPOSelector | str | os.PathLike | None = None,
    encoder: str = DEFAULT_ENCODER,
    **select_kwargs: Any,
) -> Selection:
    """Pick the ``num_frames`` frames of ``video`` that matter for ``question``.

    Every other keyword (``method``, ``fps``, ``max_candidates``, ``return_frames``, ``frame_size``,
    ``strategy``, ``zoom``, ``unit``, ``token_budget``, ``model``, ``clips``, ``options``) is
    :meth:`TSPOSelector.select`'s, which owns their defaults (``inspect.signature(select_frames)`` and
    ``help`` show them all).

    ``options``: a multiple-choice question's option texts; a filter-family selector scores frames
    against them too ("which came first, A or B" looks for both); other agents and CLIP ignore them.

    ``video``: a file path or a virtual video (list of ``{source, start_s, end_s}``).
    ``selector``: a :class:`TSPOSelector`, a selector directory, or ``None`` for an untrained one on
    ``encoder`` (CLIP-similarity ranking). Candidates are taken at ``fps`` per second (at most
    ``max_candidates``). Every setting left None is the selector's (:class:`SelectionSettings`:
    a saved selector's stored values, else the defaults of :mod:`tspo.settings`). ``method`` left None
    is the selector's own (:attr:`TSPOSelector.method`: its ``config.json``'s, else its agent family's —
    ``tspo``, top-k of the agent's scores, or ``tspo+shot`` for a filter selector); :attr:`Selection.method`
    names the one used. Deterministic: the method's rule over the scores, no sampling noise. Returns a
    :class:`Selection` with frame indices (ascending) and timestamps in seconds.

    ``strategy="zoom"``: coarse-to-fine selection for long videos (:mod:`tspo.selection.zoom`; budget knobs
    in ``zoom``, a :class:`~tspo.selection.zoom.ZoomConfig`; ``fps``/``max_candidates`` are not used): the
    :class:`Selection` then also reports ``spans_s`` visited and ``frames_encoded``.

    ``unit="clip"``: key clips instead of key frames (:mod:`tspo.selection.clips`). The method's k picks are
    anchors; the visual-token budget of ``model`` (a name in :data:`tspo.token_budget.TOKEN_MODELS`,
    e.g. ``"qwen2-vl"``, or its transformers processor) — ``token_budget`` tokens, or by default what
    k whole frames at ``frame_size`` cost — buys as many frames as fit at the largest size that
    keeps them within it, and the extra frames grow each anchor into a clip (knobs in ``clips``, a
    :class:`~tspo.selection.clips.ClipConfig`). The :class:`Selection` holds the flat frame list (frames read
    at the planned size) plus ``clip_spans_s``, ``clip_ids`` and ``token_plan``.
    """
    if selector is None:
        selector = _DEFAULT_SELECTORS.get(encoder)
        if selector is None:
            selector = _DEFAULT_SELECTORS.setdefault(encoder, TSPOSelector(encoder=encoder))
    elif not isinstance(selector, TSPOSelector):
        selector = TSPOSelector.from_pretrained(selector)
    return selector.select(video, question, num_frames, **select_kwargs)


def _forwarding_signature(facade: Any, target: Any, skip: int) -> inspect.Signature:
    """``facade``'s own parameters, then ``target``'s after its first ``skip`` ones (keyword-only, with
    their defaults and annotations), in place of ``**kwargs``: one owner of the defaults, and
    ``help`` / ``inspect.signature`` still list every keyword a caller may pass."""
    own = [p for p in inspect.signature(facade).parameters.values() if p.kind is not p.VAR_KEYWORD]
    forwarded = [p.replace(kind=p.KEYWORD_ONLY) for p in list(inspect.signature(target).parameters.values())[skip:]]
    return inspect.signature(facade).replace(parameters=own + forwarded)


# select's first four parameters (self, video, question, num_frames) are select_frames' own
select_frames.__signature__ = _forwarding_signature(select_frames, TSPOSelector.select, skip=4)
