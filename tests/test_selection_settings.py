"""One owner of the selection settings: a saved selector's k / fps / frame size reach every entry point,
k is validated once, frames handed on are whole, and one oracle spec grammar serves every caller."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from conftest import write_video

from tspo import TSPOSelector, select_frames
from tspo.agents import GumbelTopK
from tspo.cli import main as tspo_main
from tspo.data_synth import Sample, write_manifest
from tspo.evaluation.evaluate import evaluate_samples
from tspo.evaluation.evaluate import main as eval_main
from tspo.features.cache import FeatureCache
from tspo.rewards import (
    ClipZeroShotOracle,
    OpenAICompatibleOracle,
    OracleConfigError,
    SimulatedOracle,
    build_oracle,
)
from tspo.settings import DEFAULT_NUM_FRAMES, SelectionSettings
from tspo.training.module import TrainingConfigError, TSPOModule

QUESTION = "What colour is the square?"


def _sample(video) -> Sample:
    return Sample(id="s0", video=str(video), question=QUESTION, options=["red", "blue"], answer="A",
                  kind="needle", target_spans_s=[[4.0, 8.0]], evidence_spans_s=[[4.0, 8.0]], duration_s=20.0)


@pytest.fixture()
def saved_selector(tiny_encoder, tmp_path):
    """A selector saved with k = 4 at 0.5 fps: the 20 s test video has 10 candidates on its grid."""
    sel = TSPOSelector(encoder=tiny_encoder, cache=FeatureCache(tmp_path / "cache"), num_frames=4, fps=0.5)
    path = sel.save_pretrained(tmp_path / "sel")
    assert json.loads((path / "config.json").read_text())["num_frames"] == 4
    return path


def test_saved_settings_reach_select_frames_and_the_cli(saved_selector, short_video, capsys):
    sel = TSPOSelector.from_pretrained(saved_selector)
    assert sel.settings == SelectionSettings(num_frames=4, fps=0.5, method="tspo")  # the paper family's own method
    direct = sel.select(short_video, QUESTION)
    assert len(direct.indices) == 4 and direct.num_candidates == 10
    via_api = select_frames(short_video, QUESTION, selector=sel)
    np.testing.assert_array_equal(via_api.indices, direct.indices)
    assert via_api.num_candidates == 10
    assert tspo_main(["select", str(short_video), QUESTION, "--selector", str(saved_selector), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["indices"] == direct.indices.tolist() and printed["num_candidates"] == 10
    # an explicit argument still wins over the stored value
    assert len(select_frames(short_video, QUESTION, num_frames=2, selector=sel).indices) == 2


def test_saved_settings_reach_tspo_eval(saved_selector, short_video, tmp_path):
    manifest = write_manifest(tmp_path / "m.jsonl", [_sample(short_video)])
    out = tmp_path / "eval.json"
    assert eval_main(["--manifest", str(manifest), "--selector", str(saved_selector), "--methods", "tspo,uniform",
                      "--out", str(out), "--per-sample"]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["num_frames"] == 4 and result["config"]["fps"] == 0.5
    assert [len(s["timestamps_s"]) for s in result["samples"]] == [4, 4]
    assert all(t % 2 == 0 for s in result["samples"] for t in s["timestamps_s"])  # the 0.5 fps grid


def test_k_is_validated_once_with_one_message(tiny_encoder, short_video):
    expected = r"must be a positive int \(frames to select\)"
    sel = TSPOSelector(encoder=tiny_encoder, cache=False)
    for call in (lambda: SelectionSettings(num_frames=0),
                 lambda: GumbelTopK(0),
                 lambda: sel.select(short_video, QUESTION, num_frames=-1),
                 lambda: TSPOSelector(encoder=tiny_encoder, cache=False, num_frames=True),
                 lambda: evaluate_samples([], "uniform", SimulatedOracle(), 0, sel)):
        with pytest.raises(ValueError, match=expected):
            call()
    with pytest.raises(TrainingConfigError, match=f"model.num_frames {expected}"):
        TSPOModule(num_frames=0)
    default_k = inspect.signature(TSPOModule).parameters["num_frames"].default
    assert default_k == DEFAULT_NUM_FRAMES == SelectionSettings().num_frames


def test_frames_handed_on_are_whole_not_centre_cropped(tiny_encoder, tmp_path):
    wide = write_video(tmp_path / "wide.mp4", seconds=4, fps=4, size=(40, 94))   # 2.35 : 1
    sel = TSPOSelector(encoder=tiny_encoder, cache=False)
    res = sel.select(wide, QUESTION, num_frames=2, return_frames=True, frame_size=24)
    assert res.frames.shape == (2, 24, 56, 3)                                     # short side 24, aspect kept
    native = sel.select(wide, QUESTION, num_frames=2, return_frames=True, frame_size=400)
    assert native.frames.shape == (2, 40, 94, 3)                                  # never upscaled


def test_one_oracle_grammar(tiny_encoder, short_video, tmp_path, capsys):
    assert build_oracle("simulated:wrong", seed=3).guess == "wrong"
    assert isinstance(build_oracle("clip", encoder=tiny_encoder), ClipZeroShotOracle)
    remote = build_oracle("openai:http://localhost:9/v1#tiny", max_retries=0)
    assert isinstance(remote, OpenAICompatibleOracle) and remote.model == "tiny"
    assert isinstance(build_oracle("tspo.rewards.SimulatedOracle", guess="first"), SimulatedOracle)
    oracle = SimulatedOracle()
    assert build_oracle(oracle) is oracle
    with pytest.raises(OracleConfigError, match="needs a model"):
        build_oracle("hf")
    with pytest.raises(OracleConfigError, match="could not load"):
        build_oracle(f"hf:{tmp_path / 'no-model'}")
    with pytest.raises(OracleConfigError, match="unknown oracle spec 'gpt5'"):
        build_oracle("gpt5")
    # the data filter takes the same grammar (the paper's MLLM-based filter needs hf / openai)
    manifest = write_manifest(tmp_path / "m.jsonl", [_sample(short_video)])
    assert tspo_main(["synth", "filter", "--manifest", str(manifest), "--out", str(tmp_path / "o.jsonl"),
                      "--oracle", f"hf:{tmp_path / 'no-model'}"]) == 2
    assert "could not load" in capsys.readouterr().err
