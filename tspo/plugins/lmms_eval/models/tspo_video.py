"""``tspo_video``: an lmms-eval model that wraps another lmms-eval video model and replaces its frame
sampling with tspo's selection (see :mod:`tspo.plugins.lmms_eval` for the command line).

Each request's visuals come from the task's ``doc_to_visual``; every video path among them is
replaced, before the wrapped model sees the request, by

- ``visual_mode="clip"`` (default): a short H.264 clip of the k selected frames in time order, at
  their mean frame rate, for models that read video files (llava_vid, qwen2_vl, ...);
- ``visual_mode="frames"``: the k frames as PIL images, for image-list models.

A clip plays its frames evenly spaced, so a wrapped model that reads times from the file (Qwen2-VL's
temporal positions, llava_vid's "frames are located at ...") would see uniform times that are not
where the frames were taken. In clip mode the real times are therefore prefixed to the context by
default (``timestamps_in_prompt=None`` -> True for "clip", False for "frames"; pass True/False to force).

The wrapped model's generation, batching and answer post-processing are untouched.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from tspo.errors import TSPOError

try:
    from lmms_eval.api.model import lmms
    from lmms_eval.api.registry import register_model
except ImportError as err:  # pragma: no cover - exercised only without lmms-eval
    raise ImportError(
        "tspo.plugins.lmms_eval needs lmms-eval: pip install 'tspo[lmms]' (tspo registers the "
        "model through the lmms_eval.models entry point; older versions: LMMS_EVAL_PLUGINS=tspo.plugins.lmms_eval)"
    ) from err

from tspo.plugins._clip import clip_from_selection, timestamps_sentence, to_pil_images, write_clip
from tspo.plugins.lmms_eval import compat
from tspo.plugins.lmms_eval.args import check_passed_on
from tspo.selection.clips import UNITS, ClipConfig
from tspo.selection.selector import TSPOSelector
from tspo.selection.zoom_config import STRATEGIES, pop_zoom_knobs
from tspo.token_budget import DEFAULT_TOKEN_MODEL, TOKEN_MODELS

# Before lmms-eval gets far enough to fail inside its own try/except (and exit 0).
compat.check()

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (
    ".mp4",
    ".mkv",
    ".avi",
    ".webm",
    ".mov",
    ".m4v",
    ".flv",
    ".mpg",
    ".mpeg",
    ".ts",
    ".wmv",
    ".gif",
)
VISUAL_MODES = ("clip", "frames")
# What lmms-eval video models call their own frame budget; checked against num_frames.
FRAME_COUNT_ATTRS = ("max_frames_num", "max_num_frames", "num_frames", "nframes", "frames_upbound")


class TSPOVideoConfigError(TSPOError, ValueError):
    """Arguments of the tspo_video lmms-eval model that cannot work."""


def _is_video(visual: Any) -> bool:
    return isinstance(visual, (str, Path)) and str(visual).lower().endswith(VIDEO_SUFFIXES)


def _wrapped_model_class(name: str) -> type:
    """The lmms-eval class called ``name``: built-in models load lazily through
    ``lmms_eval.models.get_model`` (the decorator registry only knows modules already imported)."""
    from lmms_eval import models

    try:
        return models.get_model(name)
    except ValueError as err:
        raise TSPOVideoConfigError(
            f"base_model={name!r} is not an lmms-eval model; pick one of `python -m lmms_eval --model list` "
            f"names, e.g. base_model=llava_vid ({err})"
        ) from err


@register_model("tspo_video")
class TSPOVideo(lmms):
    """lmms-eval model ``tspo_video``: ``base_model`` (an lmms-eval model name) with tspo frames.

    ``selector``: a selector directory, hub id or loaded ``TSPOSelector``; ``num_frames``: k;
    ``fps`` / ``max_candidates``: candidate grid; ``frame_size``: short side of the whole frames
    handed on (never upscaled); ``method``: the selection method (e.g. ``tspo``, ``tspo+nms``,
    ``uniform``); each left None is the selector's (its ``SelectionSettings``; the method: the one
    in its config.json, else its agent family's, ``tspo+shot`` for a filter selector);
    ``timestamps_in_prompt``: prefix the context with the frames' real times
    (default None: on in clip mode, whose file spaces the frames evenly, off in frames mode);
    ``clip_dir``: where clips are written (default: a temporary folder); ``selection_log``: a JSON
    Lines file that gets one line per replaced video (doc, times, source frame indices, what was
    handed on); ``device``: the selector's device, also passed to the wrapped model. Other keyword
    arguments build the wrapped model. ``strategy=zoom`` selects coarse-to-fine (``coarse_candidates``,
    ``zoom_spans``, ``span_seconds``, ``fine_fps``, ``max_frames_encoded``: its budget, as in ``tspo select``).
    ``unit=clip`` selects key clips (:mod:`tspo.selection.clips`): ``token_budget`` visual tokens of ``token_model``
    (default ``qwen2-vl``; default budget: what ``num_frames`` frames at ``frame_size`` cost) buy more,
    smaller frames, grown around the k picks; ``max_clip_frames`` caps them. Wrap a model with the
    ``token_model`` whose processor it uses, so the tokens it spends are the planned ones.

    Chat models (``is_simple = False``) get the same treatment: every ``{"type": "video"}`` item of
    the messages their request builds is replaced by the clip (or by k images) and the times go
    into the message's text. The instance's ``is_simple`` follows the wrapped model, which is how
    lmms-eval decides between the two request formats.
    """

    def __init__(
        self,
        base_model: str | None = None,
        selector: Any = None,
        num_frames: int | None = None,
        fps: float | None = None,
        max_candidates: int | None = None,
        visual_mode: str = "clip",
        frame_size: int | None = None,
        timestamps_in_prompt: bool | None = None,
        device: str | None = None,
        clip_dir: str | None = None,
        selection_log: str | None = None,
        strategy: str = "single",
        unit: str = "frame",
        token_budget: int | None = None,
        token_model: str | None = None,
        max_clip_frames: int | None = None,
        method: str | None = None,
        **base_kwargs: Any,
    ) -> None:
        super().__init__()

        if strategy not in STRATEGIES:
            raise TSPOVideoConfigError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if unit not in UNITS:
            raise TSPOVideoConfigError(f"unit must be one of {UNITS}, got {unit!r}")
        if unit != "clip" and (token_budget is not None or token_model is not None or max_clip_frames is not None):
            raise TSPOVideoConfigError("token_budget / token_model / max_clip_frames apply to clip selection; "
                                       "add unit=clip")
        if token_budget is not None and (not isinstance(token_budget, int) or token_budget < 1):
            raise TSPOVideoConfigError(f"token_budget must be a positive int (visual tokens), got {token_budget!r}")
        if token_model is not None and token_model not in TOKEN_MODELS:
            raise TSPOVideoConfigError(f"token_model must be one of {TOKEN_MODELS}, got {token_model!r}")
        # key clips within a visual-token budget (tspo.selection.clips, tspo.token_budget)
        self.unit, self.token_budget = unit, token_budget
        self.token_model = token_model or DEFAULT_TOKEN_MODEL
        try:
            self.clips = ClipConfig() if max_clip_frames is None else ClipConfig(max_frames=max_clip_frames)
        except ValueError as err:
            raise TSPOVideoConfigError(str(err)) from None
        # coarse-to-fine zoom for long videos (tspo.selection.zoom); its budget knobs keep their defaults when left out
        self.strategy = strategy
        self.zoom = pop_zoom_knobs(base_kwargs)  # the rest of base_kwargs builds the wrapped model

        try:  # num_frame=4 would reach the wrapped model silently, and tspo would use its default k
            check_passed_on(base_kwargs)
        except ValueError as err:
            raise TSPOVideoConfigError(str(err)) from None
        if not base_model:
            raise TSPOVideoConfigError(
                "tspo_video needs base_model=<lmms-eval model name>, e.g. base_model=llava_vid"
            )
        if selector is None:
            raise TSPOVideoConfigError("tspo_video needs selector=<selector directory or hub id org/name>")
        if visual_mode not in VISUAL_MODES:
            raise TSPOVideoConfigError(f"visual_mode must be one of {VISUAL_MODES}, got {visual_mode!r}")
        if timestamps_in_prompt is None:
            timestamps_in_prompt = visual_mode == "clip"
        if not isinstance(timestamps_in_prompt, bool):
            raise TSPOVideoConfigError(
                f"timestamps_in_prompt must be true or false (or left out), got {timestamps_in_prompt!r}"
            )
        base_cls = _wrapped_model_class(str(base_model))
        if isinstance(selector, (str, Path)):
            selector = TSPOSelector.from_pretrained(str(selector), device=device or "cpu")
        self.selector = selector
        try:
            self.settings = selector.settings.override(num_frames, fps, max_candidates, frame_size, method)
            self.selection_method = selector.method_for(self.settings.method)
        except ValueError as err:  # a bad k / fps / size, an unknown method (with the list of known ones)
            raise TSPOVideoConfigError(str(err)) from None
        self.num_frames = self.settings.num_frames
        self.visual_mode, self.timestamps_in_prompt = visual_mode, timestamps_in_prompt
        self._tmp = tempfile.TemporaryDirectory(prefix="tspo-lmms-") if clip_dir is None else None
        self.clip_dir = Path(clip_dir if clip_dir is not None else self._tmp.name)
        self.clip_dir.mkdir(parents=True, exist_ok=True)
        self.selection_log = Path(selection_log) if selection_log else None
        if device is not None:  # lmms-eval's --device is meant for the model that runs the evaluation
            base_kwargs["device"] = device
        self.base = base_cls(**base_kwargs)
        self.is_simple = getattr(self.base, "is_simple", True)
        self.base.task_dict = self._task_dict
        self._rank, self._world_size = getattr(self.base, "rank", 0), getattr(self.base, "world_size", 1)
        self.last_selections: list[Any] = []  # selections of the latest call, in request order
        self._warn_frame_budget()

    # lmms-eval sets `lm.task_dict` on the model it built; the wrapped model reads the docs from it.
    @property
    def task_dict(self) -> dict:
        return self._task_dict

    @task_dict.setter
    def task_dict(self, value: dict) -> None:
        self._task_dict = value
        if "base" in self.__dict__:
            self.base.task_dict = value

    def __getattr__(self, name: str) -> Any:
        # Anything lmms-eval asks of the model that we do not define (accelerator, batch_size,
        # device, ...) is the wrapped model's.
        if name in {"base", "_task_dict"} or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def _warn_frame_budget(self) -> None:
        if self.visual_mode != "clip":
            return
        for attr in FRAME_COUNT_ATTRS:
            value = getattr(self.base, attr, None)
            if isinstance(value, int) and value != self.num_frames:
                logger.warning(
                    "wrapped model has %s=%d but tspo selects num_frames=%d: its sampler will %s frames of "
                    "the clip; pass %s=%d in model_args",
                    attr, value, self.num_frames, "repeat" if value > self.num_frames else "drop", attr,
                    self.num_frames,
                )  # fmt: skip

    # -- request rewriting ------------------------------------------------------------------
    def select(self, video: str, question: str) -> Any:
        """tspo's selection for one video path and the request's context (the question)."""
        s = self.settings
        return self.selector.select(
            str(video), question, num_frames=s.num_frames, method=self.selection_method, fps=s.fps,
            max_candidates=s.max_candidates, return_frames=True, frame_size=s.frame_size,
            strategy=self.strategy, zoom=self.zoom, unit=self.unit, token_budget=self.token_budget,
            model=self.token_model, clips=self.clips,
        )  # fmt: skip

    def _replacement(self, video: str, question: str, tag: str) -> tuple[Any, str]:
        """(clip path or list of PIL images, timestamps sentence) for one video of a request."""
        clip = clip_from_selection(selection := self.select(video, question))
        self.last_selections.append(selection)
        if self.visual_mode == "frames":
            handed: Any = to_pil_images(clip)
        else:
            handed = str(write_clip(clip, self.clip_dir / f"{tag}_{Path(str(video)).stem}.mp4"))
        self._log(tag, video, clip, handed)
        return handed, timestamps_sentence(clip)

    def _log(self, tag: str, video: str, clip: Any, handed: Any) -> None:
        if self.selection_log is None:
            return
        record = {
            "request": tag, "video": str(video), "method": self.selection_method,
            "timestamps_s": [round(float(t), 3) for t in clip.timestamps_s],
            "indices": [int(i) for i in clip.indices],
            "handed_on": handed if isinstance(handed, str) else f"{len(handed)} images",
        }  # fmt: skip
        if clip.clip_spans_s is not None:
            record["clips_s"] = [[round(float(a), 3), round(float(b), 3)] for a, b in clip.clip_spans_s]
        self.selection_log.parent.mkdir(parents=True, exist_ok=True)
        with self.selection_log.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def rewrite(self, request: Any) -> Any:
        """A copy of ``request`` whose visuals are tspo's frames instead of the videos.

        Simple requests carry ``(context, gen_kwargs | target, doc_to_visual, ..., doc_id, task,
        split)``; chat requests ``(context, doc_to_messages, gen_kwargs, doc_id, task, split)``.
        Requests without a doc (``("", choice)``, lmms-eval's unconditional loglikelihoods) and
        requests without videos pass through unchanged."""
        args = tuple(request.args)
        if len(args) < 5:
            return request
        context, doc_id, task, split = args[0], *args[-3:]
        tag = f"{task}_{split}_{doc_id}"
        if not self.is_simple and callable(args[1]):
            messages = args[1](self.task_dict[task][split][doc_id])
            new_messages = self._rewrite_messages(messages, str(context), tag)
            if new_messages is None:
                return request
            return _with_arguments(request, (context, _Constant(new_messages), *args[2:]))
        doc_to_visual = args[2]
        if not callable(doc_to_visual):
            return request
        visuals = doc_to_visual(self.task_dict[task][split][doc_id])
        if visuals is None:
            return request
        new_visuals, notes = [], []
        for i, visual in enumerate(visuals):
            if _is_video(visual):
                replaced, note = self._replacement(visual, str(context), f"{tag}_{i}")
                new_visuals.extend(replaced) if isinstance(replaced, list) else new_visuals.append(replaced)
                notes.append(note)
            else:
                new_visuals.append(visual)
        if not notes:
            return request
        if self.timestamps_in_prompt and isinstance(context, str):
            context = "\n".join(notes) + "\n" + context
        return _with_arguments(request, (context, args[1], _Constant(new_visuals), *args[3:]))

    def _rewrite_messages(self, messages: Any, context: str, tag: str) -> list | None:
        """Chat messages with every video item replaced; None when there is no video to replace."""
        if not isinstance(messages, list):
            return None
        messages, replaced_any = copy.deepcopy(messages), False
        for m, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            texts = [c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text"]
            question = context.strip() or "\n".join(texts)
            new_content, notes = [], []
            for i, item in enumerate(content):
                if isinstance(item, dict) and item.get("type") == "video" and _is_video(item.get("url")):
                    handed, note = self._replacement(item["url"], question, f"{tag}_{m}_{i}")
                    if isinstance(handed, list):
                        new_content += [{"type": "image", "url": image} for image in handed]
                    else:
                        new_content.append({**item, "url": handed, "start_time": None, "end_time": None})
                    notes.append(note)
                else:
                    new_content.append(item)
            if notes:
                replaced_any = True
                if self.timestamps_in_prompt:
                    new_content = _prefix_text(new_content, "\n".join(notes))
                message["content"] = new_content
        return messages if replaced_any else None

    def _run(self, method: str, requests: list) -> list:
        self.last_selections = []
        return getattr(self.base, method)([self.rewrite(r) for r in requests])

    def generate_until(self, requests: list) -> list:
        return self._run("generate_until", requests)

    def loglikelihood(self, requests: list) -> list:
        return self._run("loglikelihood", requests)

    def generate_until_multi_round(self, requests: list) -> list:
        return self._run("generate_until_multi_round", requests)


def _with_arguments(request: Any, arguments: tuple) -> Any:
    new = copy.copy(request)
    new.arguments = arguments
    return new


def _prefix_text(content: list, note: str) -> list:
    """``content`` with ``note`` put before its first text item (or as a text item of its own)."""
    for i, item in enumerate(content):
        if isinstance(item, dict) and item.get("type") == "text":
            return [*content[:i], {**item, "text": f"{note}\n{item.get('text', '')}"}, *content[i + 1 :]]
    return [*content, {"type": "text", "text": note}]


class _Constant:
    """A ``doc_to_visual`` / ``doc_to_messages`` that returns the replaced payload whatever doc it is
    given (picklable; a fresh copy per call, as the wrapped model may edit what it gets)."""

    def __init__(self, payload: list) -> None:
        self.payload = payload

    def __call__(self, doc: Any, **kwargs: Any) -> list:
        return copy.deepcopy(self.payload)
