"""select_frames(unit="clip"): clips within the token budget, and the token count the tiny Qwen2-VL /
LLaVA-OneVision processors receive equals the one the package planned (and never exceeds the budget)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_video

from tspo import TSPOSelector
from tspo.plugins.llava import llava_inputs
from tspo.plugins.qwen import qwen_inputs
from tspo.plugins.tiny import tiny_llava_onevision, tiny_qwen_vl
from tspo.token_budget import frames_budget, rule_from_processor, video_tokens, with_rule

QUESTION = "what is in the video ?"


@pytest.fixture(scope="module")
def big_video(tmp_path_factory):
    """40 s at 2 fps, 224 x 224 px: big enough that smaller frames cost fewer Qwen tokens."""
    return write_video(tmp_path_factory.mktemp("clipvid") / "big.mp4", seconds=40, fps=2, size=(224, 224))


@pytest.fixture(scope="module")
def selector(tiny_encoder):
    return TSPOSelector(encoder=tiny_encoder, cache=False)


def _video_pad_count(inputs, processor) -> int:
    return int((inputs["input_ids"][0] == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")).sum())


@pytest.mark.parametrize("variant", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen_receives_exactly_the_planned_tokens(selector, big_video, variant):
    _, processor = tiny_qwen_vl(variant, frame_pixels=224 * 224)
    frames_sel = selector.select(big_video, QUESTION, num_frames=4, method="clip", return_frames=True, frame_size=224)
    budget = frames_budget(processor, 4, 224, (224, 224))
    assert _video_pad_count(qwen_inputs(processor, frames_sel, QUESTION).inputs, processor) == budget
    sel = selector.select(big_video, QUESTION, num_frames=4, method="clip", return_frames=True, frame_size=224,
                          unit="clip", model=processor)
    plan = sel.clips.token_plan
    assert plan.budget == budget and plan.tokens <= budget and plan.num_frames > 4      # more, smaller frames
    assert sel.frames.shape == (plan.num_frames, plan.height, plan.width, 3)
    built = qwen_inputs(processor, sel, QUESTION)
    assert _video_pad_count(built.inputs, processor) == plan.tokens                      # +-0 tokens
    assert set(frames_sel.positions.tolist()) <= set(sel.positions.tolist())           # every anchor kept
    np.testing.assert_array_equal(sel.timestamps, sel.candidate_timestamps[sel.positions])
    assert "clip(s) of consecutive frames" in built.text
    clips = sel.clip_list()
    assert sum(len(c["timestamps_s"]) for c in clips) == plan.num_frames
    assert all(c["frames"].shape[0] == len(c["indices"]) for c in clips)
    with pytest.raises(ValueError, match="unit='clip'"):
        frames_sel.clip_list()


def test_llava_receives_exactly_the_planned_tokens(selector, big_video):
    _, processor = tiny_llava_onevision()
    sel = selector.select(big_video, QUESTION, num_frames=5, method="clip", return_frames=True, unit="clip",
                          model=processor, token_budget=3 * 1 + 1)
    assert sel.clips.token_plan.num_frames == 3        # LLaVA: a budget buys frames, not resolution
    built = llava_inputs(processor, sel, QUESTION)
    count = int((built.inputs["input_ids"][0] == processor.tokenizer.convert_tokens_to_ids("<video>")).sum())
    assert count == sel.clips.token_plan.tokens == video_tokens(rule_from_processor(processor), 3, 224, 224)


def test_clip_selection_reports_clips_and_default_budget(selector, big_video):
    rule = with_rule("qwen2-vl", min_pixels=28 * 28)      # a processor set up to take small frames
    sel = selector.select(big_video, QUESTION, num_frames=6, method="clip", unit="clip", model=rule, frame_size=224)
    d = sel.to_dict()
    assert d["unit"] == "clip" and d["tokens"] <= d["token_budget"] == frames_budget(rule, 6, 224, (224, 224))
    assert len(d["timestamps"]) == sel.clips.token_plan.num_frames > 6
    spans = np.asarray(d["clips_s"])
    assert (spans[:, 0] <= spans[:, 1]).all() and len(spans) == sel.clips.ids.max() + 1
    for c, (a, b) in enumerate(spans):       # each clip's frames lie inside its span
        ts = sel.timestamps[sel.clips.ids == c]
        assert ts.min() == pytest.approx(a) and ts.max() == pytest.approx(b)


def test_clip_unit_errors(selector, big_video):
    with pytest.raises(ValueError, match="unknown unit"):
        selector.select(big_video, QUESTION, unit="shot")
    with pytest.raises(ValueError, match="has no scores"):
        selector.select(big_video, QUESTION, method="uniform", unit="clip")
    with pytest.raises(ValueError, match="strategy 'zoom' is not supported"):
        selector.select(big_video, QUESTION, unit="clip", strategy="zoom")


def test_cli_select_clips(big_video, capsys):
    from tspo.cli import main as tspo_main

    code = tspo_main(["select", str(big_video), "q?", "-k", "4", "--encoder", "tiny-random", "--method", "clip",
                      "--clips", "--frame-size", "448", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    # 224 px frames: Qwen's min_pixels already puts them at 316 px, so the budget buys no extra frame here
    assert out["unit"] == "clip" and out["token_model"] == "qwen2-vl" and out["tokens"] <= out["token_budget"]
    assert tspo_main(["select", str(big_video), "q?", "--encoder", "tiny-random", "--token-budget", "100"]) == 2
    assert "pass --clips too" in capsys.readouterr().err
    assert tspo_main(["select", str(big_video), "q?", "--encoder", "tiny-random", "--clips", "--token-budget",
                      "0"]) == 2
    assert "--token-budget must be a positive" in capsys.readouterr().err
