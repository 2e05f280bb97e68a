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
import logging
import tempfile
from pathlib import Path
from typing import Any

try:
    from lmms_eval.api.model import lmms
    from lmms_eval.api.registry import get_model, register_model
except ImportError as err:  # pragma: no cover - exercised only without lmms-eval
    raise ImportError(
        "tspo.plugins.lmms_eval needs lmms-eval: pip install lmms-eval (then run it with "
        "LMMS_EVAL_PLUGINS=tspo.plugins.lmms_eval)"
    ) from err

from tspo.plugins._clip import clip_from_selection, timestamps_sentence, to_pil_images, write_clip

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


class TSPOVideoConfigError(ValueError):
    """Arguments of the tspo_video lmms-eval model that cannot work."""


def _is_video(visual: Any) -> bool:
    return isinstance(visual, (str, Path)) and str(visual).lower().endswith(VIDEO_SUFFIXES)


@register_model("tspo_video")
class TSPOVideo(lmms):
    """lmms-eval model ``tspo_video``: ``base_model`` (an lmms-eval model name) with tspo frames.

    ``selector``: a selector directory, hub id or loaded ``TSPOSelector``; ``num_frames``: k;
    ``fps`` / ``max_candidates``: candidate grid; ``frame_size``: short side of the whole frames
    handed on (never upscaled); each left None is the selector's (its ``SelectionSettings``); ``timestamps_in_prompt``: prefix the context with the frames' real times
    (default None: on in clip mode, whose file spaces the frames evenly, off in frames mode);
    ``clip_dir``: where clips are written (default: a temporary folder). Other keyword arguments
    build the wrapped model.
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
        device: str = "cpu",
        clip_dir: str | None = None,
        **base_kwargs: Any,
    ) -> None:
        super().__init__()
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
        if isinstance(selector, (str, Path)):
            from tspo.selector import TSPOSelector

            selector = TSPOSelector.from_pretrained(str(selector), device=device)
        self.selector = selector
        try:
            self.settings = selector.settings.override(num_frames, fps, max_candidates, frame_size)
        except ValueError as err:
            raise TSPOVideoConfigError(str(err)) from None
        self.num_frames = self.settings.num_frames
        self.visual_mode, self.timestamps_in_prompt = visual_mode, timestamps_in_prompt
        self._tmp = tempfile.TemporaryDirectory(prefix="tspo-lmms-") if clip_dir is None else None
        self.clip_dir = Path(clip_dir if clip_dir is not None else self._tmp.name)
        self.base = get_model(base_model)(**base_kwargs)
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
            str(video), question, num_frames=s.num_frames, fps=s.fps,
            max_candidates=s.max_candidates, return_frames=True, frame_size=s.frame_size,
        )  # fmt: skip

    def _replacement(self, video: str, question: str, tag: str) -> tuple[Any, str]:
        clip = clip_from_selection(selection := self.select(video, question))
        self.last_selections.append(selection)
        if self.visual_mode == "frames":
            return to_pil_images(clip), timestamps_sentence(clip)
        path = write_clip(clip, self.clip_dir / f"{tag}_{Path(str(video)).stem}.mp4")
        return str(path), timestamps_sentence(clip)

    def rewrite(self, request: Any) -> Any:
        """A copy of ``request`` whose ``doc_to_visual`` returns tspo's frames instead of the videos.

        lmms-eval requests carry ``(context, ..., doc_to_visual, ..., doc_id, task, split)``:
        ``doc_to_visual`` is the third argument, the doc's address the last three."""
        args = tuple(request.args)
        context, doc_to_visual = args[0], args[2]
        if not callable(doc_to_visual):
            return request
        doc_id, task, split = args[-3:]
        visuals = doc_to_visual(self.task_dict[task][split][doc_id])
        if visuals is None:
            return request
        new_visuals, notes = [], []
        for i, visual in enumerate(visuals):
            if _is_video(visual):
                replaced, note = self._replacement(visual, str(context), f"{task}_{split}_{doc_id}_{i}")
                new_visuals.extend(replaced) if isinstance(replaced, list) else new_visuals.append(replaced)
                notes.append(note)
            else:
                new_visuals.append(visual)
        if self.timestamps_in_prompt and notes and isinstance(context, str):
            context = "\n".join(notes) + "\n" + context
        new = copy.copy(request)
        new.arguments = (context, args[1], _Visuals(new_visuals), *args[3:])
        return new

    def _run(self, method: str, requests: list) -> list:
        self.last_selections = []
        return getattr(self.base, method)([self.rewrite(r) for r in requests])

    def generate_until(self, requests: list) -> list:
        return self._run("generate_until", requests)

    def loglikelihood(self, requests: list) -> list:
        return self._run("loglikelihood", requests)

    def generate_until_multi_round(self, requests: list) -> list:
        return self._run("generate_until_multi_round", requests)


class _Visuals:
    """A ``doc_to_visual`` that returns the replaced visuals whatever doc it is given (picklable)."""

    def __init__(self, visuals: list) -> None:
        self.visuals = visuals

    def __call__(self, doc: Any) -> list:
        return list(self.visuals)
