"""The lmms-eval plug-in under the real lmms-eval (``make test-lmms`` builds a virtualenv with it).

Each test runs ``python -m lmms_eval`` as a user would, on a shipped task (``tspo_manifest_mcq``) over
a time-coded video, and checks what the wrapped model got: k frames, in time order, each the frame
of its timestamp, with the times in the prompt. Skipped where lmms-eval is not installed (the main
suite's virtualenv); ``make test-lmms`` fails instead if it is missing there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from plugins_helpers import frame_value, render_time_coded_video

pytest.importorskip("lmms_eval", reason="needs the real lmms-eval: `make test-lmms`")

pytestmark = pytest.mark.lmms_eval

ROOT = Path(__file__).resolve().parents[1]
# The README's command, verbatim (test_readme_prints_this_command keeps them in step).
README_COMMAND = (
    "python -m lmms_eval --model tspo_video "
    "--model_args base_model=dummy,selector=DIR,num_frames=4,selection_log=selections.jsonl,clip_dir=clips "
    '--include_path "$(python -m tspo.plugins.lmms_eval.tasks)" --tasks tspo_manifest_mcq '
    "--batch_size 1 --output_path results"
)

RECORDER = '''
import json
from lmms_eval.api.model import lmms


class _Recorder(lmms):
    def __init__(self, record, **kwargs):
        super().__init__()
        self.record, self.kwargs = record, kwargs

    def _dump(self, entry):
        with open(self.record, "a") as f:
            f.write(json.dumps(entry, default=str) + "\\n")

    def loglikelihood(self, requests):
        return [(0.0, False)] * len(requests)

    def generate_until_multi_round(self, requests):
        return self.generate_until(requests)


class RecordingSimple(_Recorder):
    def generate_until(self, requests):
        for ctx, _, doc_to_visual, doc_id, task, split in [r.args for r in requests]:
            self._dump({"context": ctx, "visuals": doc_to_visual(self.task_dict[task][split][doc_id]),
                        "device": self.kwargs.get("device")})
        return ["A"] * len(requests)


class RecordingChat(_Recorder):
    is_simple = False

    def generate_until(self, requests):
        for ctx, doc_to_messages, _, doc_id, task, split in [r.args for r in requests]:
            self._dump({"context": ctx, "messages": doc_to_messages(self.task_dict[task][split][doc_id]),
                        "device": self.kwargs.get("device")})
        return ["A"] * len(requests)


def manifests():
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id="recording_simple", simple_class_path="tspo_recorders.RecordingSimple"),
            ModelManifest(model_id="recording_chat", chat_class_path="tspo_recorders.RecordingChat")]
'''


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder as a user would have it: a video, its manifest.jsonl, a selector; plus a package of
    recording models registered through lmms-eval's entry point (a dist-info on PYTHONPATH)."""
    from tspo.selection.selector import TSPOSelector

    root = tmp_path_factory.mktemp("lmms_real")
    render_time_coded_video(root / "clip.mp4", seconds=12)
    sample = {"id": "s0", "video": "clip.mp4", "question": "When is the screen brightest?",
              "options": ["early", "late"], "answer": "A", "kind": "general", "duration_s": 12.0}  # fmt: skip
    (root / "manifest.jsonl").write_text(json.dumps(sample) + "\n")
    TSPOSelector(encoder="tiny-random", cache=False).save_pretrained(root / "DIR")
    plugins = root / "plugins"
    (plugins / "tspo_recorders-0.0.dist-info").mkdir(parents=True)
    (plugins / "tspo_recorders.py").write_text(RECORDER)
    (plugins / "tspo_recorders-0.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tspo_recorders\nVersion: 0.0\n"
    )
    (plugins / "tspo_recorders-0.0.dist-info" / "entry_points.txt").write_text(
        "[lmms_eval.models]\nrecorders = tspo_recorders:manifests\n"
    )
    return root


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TSPO_CACHE": str(cwd / "cache"),
           "PYTHONPATH": str(cwd / "plugins"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
    env.pop("LMMS_EVAL_PLUGINS", None)  # the entry point alone must be enough
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Error during evaluation" not in proc.stdout + proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _check_clip(clip: Path, times: list[float]) -> None:
    """The clip holds exactly the frames at ``times`` (ascending), in that order."""
    frames = _decode(clip)
    assert len(frames) == len(times) == 4
    assert times == sorted(times) and len(set(times)) == 4
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), [frame_value(int(t)) for t in times], atol=3)


def _times_in(text: str) -> list[float]:
    match = re.search(r"The 4 video frames were taken at ([0-9., s]+)\.", text)
    assert match, text
    return [float(t.rstrip("s")) for t in match.group(1).split(", ")]


def test_readme_prints_this_command():
    assert README_COMMAND in " ".join((ROOT / "README.md").read_text().replace("\\\n", " ").split())


def test_readme_command_with_builtin_dummy_model(workdir):
    proc = _run(README_COMMAND, workdir)
    assert re.search(r"tspo_manifest_mcq\s*\|.*accuracy", proc.stdout), proc.stdout[-2000:]
    (entry,) = [json.loads(line) for line in (workdir / "selections.jsonl").read_text().splitlines()]
    assert len(entry["timestamps_s"]) == 4 and entry["indices"] == [round(t * 10) for t in entry["timestamps_s"]]
    _check_clip(workdir / entry["handed_on"], entry["timestamps_s"])  # the file the dummy model read


@pytest.mark.parametrize("kind", ["simple", "chat"])
def test_wrapped_model_receives_k_frames_in_time_order_with_times(workdir, kind):
    record = workdir / f"record_{kind}.jsonl"
    command = README_COMMAND.replace("base_model=dummy", f"base_model=recording_{kind},record={record}").replace(
        "selections.jsonl", f"selections_{kind}.jsonl"
    ) + " --device cpu"
    _run(command, workdir)
    (got,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert got["device"] == "cpu"  # lmms-eval's --device reaches the wrapped model
    if kind == "simple":
        (clip,) = got["visuals"]
        text = got["context"]
    else:
        (message,) = got["messages"]
        videos = [c for c in message["content"] if c["type"] == "video"]
        (text,) = [c["text"] for c in message["content"] if c["type"] == "text"]
        assert len(videos) == 1
        clip = videos[0]["url"]
    times = _times_in(text)
    assert "When is the screen brightest?" in text
    _check_clip(workdir / clip, times)


def test_environment_check_passes_in_the_lmms_extra():
    proc = subprocess.run([sys.executable, "-m", "tspo.plugins.lmms_eval.compat"], capture_output=True, text=True)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_broken_dependency_stops_the_command_with_the_fix(workdir):
    """A known-bad dependency (here simulated: the check reports filelock 4) must not end in lmms-eval's
    'Error during evaluation' with exit 0: the real lmms-eval command exits 2 with one line."""
    shim = workdir / "broken_env"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(
        "import tspo.plugins.lmms_eval.compat as c\n"
        "c.problems = lambda **kw: ['filelock 4.3.2 has no filelock._api (simulated)']\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TSPO_CACHE": str(workdir / "cache"),
           "PYTHONPATH": f"{shim}:{workdir / 'plugins'}", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
    command = README_COMMAND.replace("selections.jsonl", "selections_broken.jsonl").replace("results", "results_broken")
    proc = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "tspo_video cannot run here: filelock 4.3.2" in proc.stderr and "pip install 'tspo[lmms]'" in proc.stderr
    assert not (workdir / "results_broken").exists()


# -- in-process: request shapes the command line above does not produce -------------------------
class _Seen:
    """A wrapped model registered with the real lmms-eval registry that keeps what it was handed."""

    @staticmethod
    def register():
        from lmms_eval.api.model import lmms
        from lmms_eval.models import MODEL_REGISTRY_V2
        from lmms_eval.models.registry_v2 import ModelManifest

        class SeenModel(lmms):
            def __init__(self, max_frames_num: int = 32, **kwargs) -> None:
                super().__init__()
                self.max_frames_num, self.seen = max_frames_num, []

            def _look(self, requests):
                for r in requests:
                    if len(r.args) == 2:
                        self.seen.append(r.args)
                    else:
                        ctx, _, doc_to_visual, doc_id, task, split = r.args
                        self.seen.append((ctx, doc_to_visual(self.task_dict[task][split][doc_id])))

            def generate_until(self, requests):
                self._look(requests)
                return ["A"] * len(requests)

            def loglikelihood(self, requests):
                self._look(requests)
                return [(-1.0, True)] * len(requests)

            def generate_until_multi_round(self, requests):
                return self.generate_until(requests)

        sys.modules[__name__].SeenModel = SeenModel
        MODEL_REGISTRY_V2.register_manifest(
            ModelManifest(model_id="tspo_test_seen", simple_class_path=f"{__name__}.SeenModel"), overwrite=True
        )


def _tspo_video():
    from tspo.plugins.lmms_eval.models.tspo_video import TSPOVideo

    return TSPOVideo


def _instance(kind, args):
    from lmms_eval.api.instance import Instance

    return Instance(request_type=kind, arguments=args, idx=0, metadata={"task": "t", "doc_id": 0, "repeats": 1})


def test_frames_mode_loglikelihood_and_unconditional_requests(workdir):
    _Seen.register()
    model = _tspo_video()(base_model="tspo_test_seen", selector=str(workdir / "DIR"), num_frames=3,
                          visual_mode="frames", timestamps_in_prompt=True, frame_size=32)  # fmt: skip
    model.task_dict = {"t": {"test": {0: {"video": str(workdir / "clip.mp4")}}}}
    conditional = _instance("loglikelihood", ("Q?", " A", lambda doc: [doc["video"]], 0, "t", "test"))
    unconditional = _instance("loglikelihood", ("", "A"))  # acc_mutual_info's (context, choice)
    assert model.loglikelihood([conditional, unconditional]) == [(-1.0, True)] * 2
    (context, images), passed = model.base.seen
    assert passed == ("", "A")
    sel = model.last_selections[0]
    assert context.startswith("The 3 video frames were taken at ") and context.endswith("Q?")
    assert [np.asarray(im).shape for im in images] == [(32, 43, 3)] * 3  # whole 48x64 frames, short side 32
    np.testing.assert_allclose([np.asarray(im).mean() for im in images],
                               [frame_value(int(t)) for t in sel.timestamps], atol=3)  # fmt: skip


def test_config_errors_and_frame_budget_warning(workdir, caplog):
    import logging

    _Seen.register()
    cls, selector = _tspo_video(), str(workdir / "DIR")
    with caplog.at_level(logging.WARNING):
        cls(base_model="tspo_test_seen", selector=selector, num_frames=4, max_frames_num=32)
    assert "max_frames_num=4" in caplog.text
    with pytest.raises(ValueError, match="base_model"):
        cls(selector=selector)
    with pytest.raises(ValueError, match="not an lmms-eval model"):
        cls(base_model="no_such_model", selector=selector)
    with pytest.raises(ValueError, match="visual_mode"):
        cls(base_model="tspo_test_seen", selector=selector, visual_mode="tokens")
    with pytest.raises(ValueError, match="timestamps_in_prompt"):
        cls(base_model="tspo_test_seen", selector=selector, timestamps_in_prompt="yes")


def test_zoom_strategy_matches_the_selector(workdir):
    from tspo.selection.selector import TSPOSelector
    from tspo.selection.zoom import ZoomConfig

    _Seen.register()
    cls, selector = _tspo_video(), str(workdir / "DIR")
    model = cls.create_from_arg_string(
        f"base_model=tspo_test_seen,selector={selector},num_frames=3,visual_mode=frames,strategy=zoom,"
        "coarse_candidates=4,zoom_spans=1,max_frames_encoded=8")
    assert model.zoom == ZoomConfig(coarse_candidates=4, num_spans=1, max_frames=8)
    model.task_dict = {"t": {"test": {0: {"video": str(workdir / "clip.mp4")}}}}
    question = "When is the screen brightest?"
    model.loglikelihood([_instance("loglikelihood", (question, " A", lambda doc: [doc["video"]], 0, "t", "test"))])
    sel = model.last_selections[0]
    assert sel.strategy == "zoom" and len(sel.timestamps) == 3 and sel.zoom.frames_encoded <= 8
    direct = TSPOSelector.from_pretrained(selector, cache=False).select(
        str(workdir / "clip.mp4"), question, num_frames=3, strategy="zoom", zoom=model.zoom)
    np.testing.assert_array_equal(direct.timestamps, sel.timestamps)
    with pytest.raises(ValueError, match="strategy"):
        cls(base_model="tspo_test_seen", selector=selector, strategy="pyramid")


def test_clip_unit_matches_the_selector(workdir):
    from tspo.selection.selector import TSPOSelector

    _Seen.register()
    cls, selector = _tspo_video(), str(workdir / "DIR")
    model = cls.create_from_arg_string(
        f"base_model=tspo_test_seen,selector={selector},num_frames=3,visual_mode=frames,unit=clip,"
        "token_budget=2000,token_model=llava-onevision")
    assert (model.unit, model.token_budget, model.token_model) == ("clip", 2000, "llava-onevision")
    model.task_dict = {"t": {"test": {0: {"video": str(workdir / "clip.mp4")}}}}
    question = "When is the screen brightest?"
    model.loglikelihood([_instance("loglikelihood", (question, " A", lambda doc: [doc["video"]], 0, "t", "test"))])
    sel = model.last_selections[0]
    # LLaVA-OneVision: 196 tokens a frame + 1, so 2000 tokens buy 10 frames grown around the 3 picks
    assert sel.unit == "clip" and sel.clips.token_plan.num_frames == len(sel.timestamps) == 10
    direct = TSPOSelector.from_pretrained(selector, cache=False).select(
        str(workdir / "clip.mp4"), question, num_frames=3, unit="clip", token_budget=2000, model="llava-onevision")
    np.testing.assert_array_equal(direct.timestamps, sel.timestamps)
    with pytest.raises(ValueError, match="add unit=clip"):
        cls(base_model="tspo_test_seen", selector=selector, token_budget=100)
    with pytest.raises(ValueError, match="token_model must be one of"):
        cls(base_model="tspo_test_seen", selector=selector, unit="clip", token_model="gpt")


def test_method_defaults_to_the_selectors_own(workdir):
    """``method`` left out is the selector's own (a filter selector: tspo+nms); ``method=`` overrides it;
    an unknown name is refused with the method list."""
    import torch

    from tspo.agents import FilterAgent
    from tspo.selection.selector import TSPOSelector

    _Seen.register()
    cls = _tspo_video()
    agent = FilterAgent(dim=64, nms_radius=3)   # tiny-random: D = 64
    with torch.no_grad():
        agent.set_head.bias.fill_(1.0)          # every question: suppress
    filter_dir = TSPOSelector(encoder="tiny-random", agent=agent, cache=False).save_pretrained(workdir / "FILTER")
    question = "When is the screen brightest?"
    for selector, method, expected in ((filter_dir, None, "tspo+shot"), (filter_dir, "uniform", "uniform"),
                                       (workdir / "DIR", None, "tspo")):
        args = f"base_model=tspo_test_seen,selector={selector},num_frames=3,visual_mode=frames"
        model = cls.create_from_arg_string(args + (f",method={method}" if method else ""))
        model.task_dict = {"t": {"test": {0: {"video": str(workdir / "clip.mp4")}}}}
        model.loglikelihood([_instance("loglikelihood", (question, " A", lambda doc: [doc["video"]], 0, "t", "test"))])
        sel = model.last_selections[0]
        assert sel.method == expected
        direct = TSPOSelector.from_pretrained(selector, cache=False).select(
            str(workdir / "clip.mp4"), question, num_frames=3, method=expected)
        np.testing.assert_array_equal(direct.timestamps, sel.timestamps)
    with pytest.raises(ValueError, match="unknown selection method 'best'"):
        cls(base_model="tspo_test_seen", selector=str(filter_dir), method="best")
