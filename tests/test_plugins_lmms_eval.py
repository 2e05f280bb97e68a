"""lmms-eval plug-in contract, offline: a minimal fake ``lmms_eval`` (api.model.lmms, api.registry,
api.instance, models with the LMMS_EVAL_PLUGINS hook, shaped after lmms-eval's own files) is put in
sys.modules; the plug-in loads through the hook, wraps a fake video model and feeds it tspo's frames."""

from __future__ import annotations

import abc
import importlib
import logging
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest
from plugins_helpers import frame_value, render_time_coded_video

from tspo.selector import TSPOSelector

PLUGIN = "tspo.plugins.lmms_eval"
QUESTION = "What colour is the screen? (A) dark (B) light"


def _fake_lmms_eval() -> dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in
            ("lmms_eval", "lmms_eval.api", "lmms_eval.api.model", "lmms_eval.api.registry",
             "lmms_eval.api.instance", "lmms_eval.models", "lmms_eval.utils")}  # fmt: skip
    mods["lmms_eval"].__path__ = []
    mods["lmms_eval.api"].__path__ = []

    def handle(arg):
        if arg.lower() in {"true", "false"}:
            return arg.lower() == "true"
        if arg.isnumeric():
            return int(arg)
        try:
            return float(arg)
        except ValueError:
            return arg

    def simple_parse_args_string(s):
        return {k: handle(v) for k, v in (a.split("=") for a in s.strip().split(",") if a)}

    class lmms(abc.ABC):  # noqa: N801 - lmms-eval's name
        def __init__(self) -> None:
            self._rank, self._world_size, self.task_dict = 0, 1, {}

        @abc.abstractmethod
        def loglikelihood(self, requests): ...

        @abc.abstractmethod
        def generate_until(self, requests): ...

        @abc.abstractmethod
        def generate_until_multi_round(self, requests): ...

        @classmethod
        def create_from_arg_string(cls, arg_string, additional_config=None):
            extra = {k: v for k, v in (additional_config or {}).items() if v is not None}
            return cls(**simple_parse_args_string(arg_string), **extra)

        @property
        def rank(self):
            return self._rank

        @property
        def world_size(self):
            return self._world_size

    registry: dict = {}

    def register_model(*names):
        def decorate(cls):
            for name in names:
                assert issubclass(cls, lmms), f"Model '{name}' ({cls.__name__}) must extend lmms class"
                registry[name] = cls
            return cls

        return decorate

    available: dict = {}

    def models_get_model(name):
        path = available[name]
        module, cls = path.rsplit(".", 1)
        return getattr(importlib.import_module(module), cls)

    def load_plugins(env):  # lmms_eval/models/__init__.py, run at its import
        for plugin in env.get("LMMS_EVAL_PLUGINS", "").split(","):
            if plugin:
                m = importlib.import_module(f"{plugin}.models")
                for model_name, model_class in m.AVAILABLE_MODELS.items():
                    available[model_name] = f"{plugin}.models.{model_name}.{model_class}"

    def get_model(name):
        return registry[name] if name in registry else models_get_model(name)

    @dataclass
    class Instance:
        request_type: str
        arguments: tuple
        idx: int
        metadata: dict = field(default_factory=dict)

        @property
        def args(self):
            return self.arguments if isinstance(self.arguments, tuple) else (self.arguments,)

    mods["lmms_eval.utils"].simple_parse_args_string = simple_parse_args_string
    mods["lmms_eval.api.model"].lmms = lmms
    reg = mods["lmms_eval.api.registry"]
    reg.MODEL_REGISTRY, reg.register_model, reg.get_model = registry, register_model, get_model
    mods["lmms_eval.api.instance"].Instance = Instance
    m = mods["lmms_eval.models"]
    m.AVAILABLE_MODELS, m.get_model, m.load_plugins = available, models_get_model, load_plugins
    return mods


@pytest.fixture()
def lmms_eval(monkeypatch):
    for name, module in _fake_lmms_eval().items():
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules.pop(f"{PLUGIN}.models.tspo_video", None)  # re-import against this fake
    yield sys.modules["lmms_eval"]
    sys.modules.pop(f"{PLUGIN}.models.tspo_video", None)


@pytest.fixture()
def fake_vid(lmms_eval):
    api = sys.modules["lmms_eval.api.model"]
    register = sys.modules["lmms_eval.api.registry"].register_model

    @register("fake_vid")
    class FakeVid(api.lmms):
        """Reads each request's visuals the way lmms-eval video models do; decodes clips."""

        def __init__(self, max_frames_num: int = 32) -> None:
            super().__init__()
            self.max_frames_num, self.seen = max_frames_num, []

        def _visuals(self, requests):
            for req in requests:
                _, _, doc_to_visual, doc_id, task, split = req.args
                self.seen.append((req.args[0], doc_to_visual(self.task_dict[task][split][doc_id])))

        def generate_until(self, requests):
            self._visuals(requests)
            return ["A"] * len(requests)

        def loglikelihood(self, requests):
            self._visuals(requests)
            return [(-1.0, True)] * len(requests)

        def generate_until_multi_round(self, requests):
            return self.generate_until(requests)

    return FakeVid


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmms")
    video = render_time_coded_video(root / "clip.mp4", seconds=12)
    selector_dir = TSPOSelector(encoder="tiny-random", cache=False).save_pretrained(root / "selector")
    return video, selector_dir


def _request(lmms_eval, kind="generate_until", second=None):
    instance = sys.modules["lmms_eval.api.instance"].Instance
    second = {"max_new_tokens": 4} if second is None else second
    args = (QUESTION, second, lambda doc: [doc["video"]], 0, "videoqa", "test")
    return instance(kind, args, idx=0, metadata={"task": "videoqa", "doc_id": 0, "repeats": 1})


def _decode(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_plugin_hook_finds_registered_lmms_subclass(lmms_eval, monkeypatch):
    monkeypatch.setenv("LMMS_EVAL_PLUGINS", PLUGIN)
    models = sys.modules["lmms_eval.models"]
    models.load_plugins({"LMMS_EVAL_PLUGINS": PLUGIN})
    assert models.AVAILABLE_MODELS["tspo_video"] == f"{PLUGIN}.models.tspo_video.TSPOVideo"
    cls = models.get_model("tspo_video")
    assert issubclass(cls, sys.modules["lmms_eval.api.model"].lmms)
    assert sys.modules["lmms_eval.api.registry"].MODEL_REGISTRY["tspo_video"] is cls


def test_wrapped_model_gets_a_clip_of_exactly_the_selected_frames(lmms_eval, fake_vid, assets):
    video, selector_dir = assets
    cls = _load_cls()
    model = cls.create_from_arg_string(
        f"base_model=fake_vid,selector={selector_dir},num_frames=4,max_frames_num=4"
    )
    model.task_dict = {"videoqa": {"test": {0: {"video": str(video)}}}}
    request = _request(lmms_eval)
    assert model.generate_until([request]) == ["A"]
    ((context, visuals),) = model.base.seen
    assert len(visuals) == 1 and visuals[0].endswith(".mp4")
    sel = model.last_selections[0]
    # the clip spaces its frames evenly, so by default the real times go into the prompt
    times = ", ".join(f"{t:.1f}s" for t in sel.timestamps)  # 1 fps candidates: distinct at one decimal
    assert context == f"The 4 video frames were taken at {times}.\n{QUESTION}"
    direct = TSPOSelector.from_pretrained(selector_dir, cache=False).select(
        str(video), QUESTION, num_frames=4
    )
    np.testing.assert_array_equal(sel.timestamps, direct.timestamps)
    frames = _decode(visuals[0])
    assert len(frames) == 4 and frames.shape[1:] == (48, 64, 3)  # native resolution, k frames
    np.testing.assert_allclose(
        frames.mean(axis=(1, 2, 3)), [frame_value(int(t)) for t in sel.timestamps], atol=3
    )
    assert request.args[2]({"video": "x.mp4"}) == ["x.mp4"]  # the caller's request is not modified
    assert model.rank == 0 and model.world_size == 1 and model.max_frames_num == 4  # delegation


def test_frames_mode_timestamps_and_loglikelihood(lmms_eval, fake_vid, assets):
    video, selector_dir = assets
    selector = TSPOSelector.from_pretrained(selector_dir, cache=False)
    model = _load_cls()(base_model="fake_vid", selector=selector, num_frames=3, visual_mode="frames",
                        timestamps_in_prompt=True, frame_size=32)  # fmt: skip
    model.task_dict = {"videoqa": {"test": {0: {"video": str(video)}}}}
    assert model.loglikelihood([_request(lmms_eval, "loglikelihood", second="A")]) == [(-1.0, True)]
    ((context, visuals),) = model.base.seen
    sel = model.last_selections[0]
    assert context.startswith("The 3 video frames were taken at ") and context.endswith(QUESTION)
    assert [np.asarray(im).shape for im in visuals] == [(32, 43, 3)] * 3  # whole 48x64 frames, short side 32
    np.testing.assert_allclose(
        [np.asarray(im).mean() for im in visuals], [frame_value(int(t)) for t in sel.timestamps], atol=3
    )


def test_clip_mode_timestamps_can_be_turned_off(lmms_eval, fake_vid, assets):
    video, selector_dir = assets
    model = _load_cls().create_from_arg_string(
        f"base_model=fake_vid,selector={selector_dir},num_frames=4,timestamps_in_prompt=false"
    )
    model.task_dict = {"videoqa": {"test": {0: {"video": str(video)}}}}
    model.generate_until([_request(lmms_eval)])
    ((context, visuals),) = model.base.seen
    assert context == QUESTION and visuals[0].endswith(".mp4")
    frames = _load_cls()(base_model="fake_vid", selector=str(selector_dir), visual_mode="frames")
    assert frames.timestamps_in_prompt is False  # image lists keep the context as is unless asked
    with pytest.raises(ValueError, match="timestamps_in_prompt"):
        _load_cls()(base_model="fake_vid", selector=str(selector_dir), timestamps_in_prompt="yes")


def test_frame_budget_warning_and_config_errors(lmms_eval, fake_vid, assets, caplog):
    _, selector_dir = assets
    cls = _load_cls()
    with caplog.at_level(logging.WARNING):
        cls(base_model="fake_vid", selector=str(selector_dir), num_frames=4, max_frames_num=32)
    assert "max_frames_num=4" in caplog.text
    with pytest.raises(ValueError, match="base_model"):
        cls(selector=str(selector_dir))
    with pytest.raises(ValueError, match="visual_mode"):
        cls(base_model="fake_vid", selector=str(selector_dir), visual_mode="tokens")


def _load_cls():
    return importlib.import_module(f"{PLUGIN}.models.tspo_video").TSPOVideo
