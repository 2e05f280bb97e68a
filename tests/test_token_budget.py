"""Token budgets: the package's count of visual tokens equals what the real transformers processors
produce (token for token), and plan_frames fits the most frames within a budget."""

from __future__ import annotations

import numpy as np
import pytest
import transformers as tf

from tspo.plugins.tiny import tiny_llava_onevision, tiny_qwen_vl, tiny_tokenizer
from tspo.token_budget import (
    TokenBudgetError,
    frames_budget,
    plan_frames,
    rule_from_processor,
    token_rule,
    video_tokens,
)
from tspo.video import whole_frame_shape


def _qwen_processor_tokens(processor, n: int, h: int, w: int) -> int:
    """Tokens the processor's own video pipeline gives n frames of h x w (grid_thw / merge**2)."""
    frames = np.random.default_rng(0).integers(0, 255, size=(n, h, w, 3), dtype=np.uint8)
    out = processor(videos=[frames], do_sample_frames=False, return_tensors="np")
    merge = processor.merge_size
    return int(np.prod(out["video_grid_thw"][0]) // merge**2)


# (frames, height, width): odd counts, below min_pixels, above max_pixels, off-grid and tall frames
SHAPES = [(8, 448, 448), (7, 336, 336), (14, 336, 448), (3, 64, 64), (2, 1080, 1920), (5, 250, 333), (1, 30, 700)]


@pytest.mark.parametrize("n,h,w", SHAPES)
@pytest.mark.parametrize("cap", [False, True])
def test_qwen_rule_matches_real_video_processor(n, h, w, cap):
    vp = tf.Qwen2VLVideoProcessor(cap_pixels_per_frame=cap, **({"max_video_tokens": 2000} if cap else {}))
    assert video_tokens(rule_from_processor(_Holder(vp)), n, h, w) == _qwen_processor_tokens(vp, n, h, w)


def test_named_qwen_rule_is_the_released_processor_default():
    vp = tf.Qwen2VLVideoProcessor(cap_pixels_per_frame=False)
    for name in ("qwen2-vl", "qwen2.5-vl"):
        for n, h, w in SHAPES[:4]:
            assert video_tokens(name, n, h, w) == _qwen_processor_tokens(vp, n, h, w)
    assert video_tokens("qwen2-vl", 8, 448, 448) == 4 * 16 * 16    # 8 full-size frames: 1024 tokens


class _Holder:
    def __init__(self, vp):
        self.video_processor = vp


@pytest.mark.parametrize("variant", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen_prompt_carries_exactly_the_counted_tokens(variant):
    _, processor = tiny_qwen_vl(variant, frame_pixels=112 * 112)
    rule = rule_from_processor(processor)
    for n, h, w in [(4, 56, 84), (5, 112, 112), (2, 200, 90)]:
        frames = np.zeros((n, h, w, 3), np.uint8)
        text = "<|vision_start|><|video_pad|><|vision_end|> what"
        ids = processor(text=[text], videos=[frames], do_sample_frames=False, return_tensors="np")["input_ids"][0]
        assert int((ids == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")).sum()) == video_tokens(rule, n, h, w)


def _llava_video_tokens(processor, n: int, h: int, w: int) -> int:
    frames = np.zeros((n, h, w, 3), np.uint8)
    ids = processor(text=["<video> what"], videos=[frames], do_sample_frames=False, return_tensors="np")["input_ids"][0]
    return int((ids == processor.tokenizer.convert_tokens_to_ids("<video>")).sum())


def test_llava_rule_matches_real_processors():
    _, tiny = tiny_llava_onevision()
    for n, h, w in [(1, 28, 28), (6, 64, 96), (9, 300, 200)]:
        assert video_tokens(rule_from_processor(tiny), n, h, w) == _llava_video_tokens(tiny, n, h, w)
    # the released OneVision / LLaVA-Video setting: 384 px SigLIP input, 27 x 27 patches pooled 2 x 2
    real = tf.LlavaOnevisionProcessor(video_processor=tf.LlavaOnevisionVideoProcessor(),
                                      image_processor=tf.LlavaOnevisionImageProcessor(), tokenizer=tiny_tokenizer(),
                                      num_image_tokens=729, vision_feature_select_strategy="full")
    for name in ("llava-onevision", "llava-video"):
        assert video_tokens(name, 3, 448, 448) == _llava_video_tokens(real, 3, 448, 448) == 3 * 196 + 1
        assert video_tokens(name, 3, 100, 160) == video_tokens(name, 3, 448, 448)   # size buys nothing


def test_plan_trades_resolution_for_frames_within_budget():
    budget = frames_budget("qwen2-vl", 8, 448, (448, 448))
    assert budget == 1024
    plan = plan_frames("qwen2-vl", budget, (448, 448), max_frame_size=448, max_frames=64)
    # 316 px is the smallest Qwen frame (min_pixels): 14 frames seen at 336 px (12 x 12 merged patches) fit;
    # 350 px is the largest frame the processor still resizes to 336
    assert (plan.num_frames, plan.frame_size, plan.tokens, plan.seen_hw) == (14, 350, 7 * 144, (336, 336))
    assert video_tokens("qwen2-vl", plan.num_frames, plan.height, plan.width) == plan.tokens <= budget
    assert video_tokens("qwen2-vl", plan.num_frames + 1, *whole_frame_shape(448, 448, 316)) > budget
    same = plan_frames("qwen2-vl", budget, (448, 448), 448, max_frames=8)
    assert (same.num_frames, same.frame_size, same.tokens) == (8, 448, 1024)     # k frames: full size
    llava = plan_frames("llava-onevision", frames_budget("llava-onevision", 8, 448, (448, 448)), (448, 448), 448, 64)
    assert (llava.num_frames, llava.frame_size) == (8, 448)
    wide = plan_frames("qwen2-vl", budget, (720, 1280), 448, 64)
    assert (wide.height, wide.width) == whole_frame_shape(720, 1280, wide.frame_size)
    assert wide.tokens <= budget


def test_plan_errors_name_the_fix():
    with pytest.raises(TokenBudgetError, match="raise the token budget"):
        plan_frames("qwen2-vl", 50, (448, 448), 448, 8)
    with pytest.raises(TokenBudgetError, match="budget must be a positive int"):
        plan_frames("qwen2-vl", 0, (448, 448), 448, 8)
    with pytest.raises(TokenBudgetError, match="choose one of"):
        token_rule("gpt-9")
    with pytest.raises(TokenBudgetError, match="cannot read a token rule"):
        token_rule(object())


def test_whole_frame_shape_is_what_read_whole_frames_returns(short_video):
    from tspo.video import probe_video, read_whole_frames

    info = probe_video(short_video)
    for size in (16, 40, 10_000):
        frames = read_whole_frames(short_video, np.array([0.0]), size)
        assert frames.shape[1:3] == whole_frame_shape(info.height, info.width, size)


def test_video_frame_shape_of_files_and_virtual_videos(short_video):
    from tspo.video import video_frame_shape

    assert video_frame_shape(short_video) == (48, 64)
    assert video_frame_shape([{"source": str(short_video), "start_s": 1.0, "end_s": 3.0}]) == (48, 64)
    assert video_tokens("llava-onevision", np.array([1, 2]), 100, 100).tolist() == [197, 393]
