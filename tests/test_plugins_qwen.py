"""Qwen2-VL / Qwen2.5-VL adapter: the model inputs hold exactly the selected frames, in order,
on the right time axis, and a tiny random model generates from them."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from plugins_helpers import fake_selection, frame_value, qwen_fed_values

from tspo.plugins import AdapterInputError, make_clip
from tspo.plugins.qwen import (
    qwen_inputs,
    qwen_messages,
    qwen_vl_utils_inputs,
    qwen_vl_utils_messages,
    seconds_per_grid,
    temporal_patch_times,
)
from tspo.plugins.tiny import tiny_qwen_vl

QUESTION = "what is in the video ?"


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def tiny(request):
    return request.param, *tiny_qwen_vl(request.param)


@pytest.mark.parametrize("timestamps", [[0.0, 2.0, 4.0, 6.0], [1.5, 3.0, 3.1, 9.0, 20.0], [7.0]])
def test_inputs_hold_selected_frames_in_order_and_generate(tiny, timestamps):
    variant, model, processor = tiny
    sel = fake_selection(timestamps)
    built = qwen_inputs(processor, sel, QUESTION)
    k = len(timestamps)
    grid_t = int(built.inputs["video_grid_thw"][0, 0])
    assert grid_t == -(-k // 2)  # 2-frame temporal patches, odd k padded
    fed = qwen_fed_values(built.inputs, processor)
    expected = [frame_value(i) for i in range(k)] + [frame_value(k - 1)] * (2 * grid_t - k)
    np.testing.assert_allclose(fed, expected, atol=1.5)
    np.testing.assert_array_equal(built.timestamps_s, timestamps)
    assert built.num_frames == k
    np.testing.assert_allclose(built.extra["patch_times_s"], temporal_patch_times(np.array(timestamps), 2))
    with torch.no_grad():
        out = model.generate(**built.inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > built.inputs["input_ids"].shape[1]


def test_timestamps_written_into_prompt(tiny):
    _, _, processor = tiny
    built = qwen_inputs(processor, fake_selection([1.0, 2.0, 2.03, 10.0]), QUESTION)
    assert "taken at 1.00s, 2.00s, 2.03s, 10.00s." in built.text  # distinct frames stay distinct
    assert built.text.index("<|video_pad|>") < built.text.index(QUESTION)
    plain = qwen_inputs(processor, fake_selection([1.0, 2.0]), QUESTION, timestamps_in_prompt=False)
    assert "taken at" not in plain.text


def test_qwen25_time_axis_follows_real_timestamps():
    model, processor = tiny_qwen_vl("qwen2_5_vl")
    # Evenly spaced every 3 s: each 2-frame patch covers 6 s.
    built = qwen_inputs(processor, fake_selection([0.0, 3.0, 6.0, 9.0, 12.0, 15.0]), QUESTION)
    assert float(built.inputs["second_per_grid_ts"][0]) == pytest.approx(6.0)
    # The rope time index of the video tokens steps by second_per_grid * tokens_per_second per patch.
    inputs = built.inputs
    pos, _ = model.model.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"],
        second_per_grid_ts=inputs["second_per_grid_ts"], attention_mask=inputs["attention_mask"],
    )  # fmt: skip
    video = inputs["input_ids"][0] == model.config.video_token_id
    t_pos = torch.unique(pos[0, 0, video])
    step = 6.0 * model.config.vision_config.tokens_per_second
    np.testing.assert_allclose(torch.diff(t_pos).numpy(), [step, step], atol=1)
    # Qwen2-VL has no time axis and gets no second_per_grid_ts.
    _, processor2 = tiny_qwen_vl("qwen2_vl")
    assert "second_per_grid_ts" not in qwen_inputs(processor2, fake_selection([0.0, 3.0]), QUESTION).inputs


def test_seconds_per_grid_uneven_and_single_patch():
    assert seconds_per_grid(np.array([0.0, 1.0, 10.0, 11.0]), 2) == pytest.approx(10.0)
    assert seconds_per_grid(np.array([0.0, 1.0, 2.0]), 2) == pytest.approx(1.5)  # patches at 0.5 s, 2.0 s
    assert seconds_per_grid(np.array([5.0]), 2) == pytest.approx(2.0)


def test_messages_and_errors():
    sel = fake_selection([0.0, 1.0])
    messages = qwen_messages(sel, QUESTION, system="be brief")
    assert messages[0]["role"] == "system"
    assert messages[1]["content"][0] == {"type": "video"}
    with pytest.raises(AdapterInputError, match="return_frames=True"):
        qwen_messages(fake_selection([0.0]).__class__(np.array([0]), np.array([0.0]), None), QUESTION)
    with pytest.raises(AdapterInputError, match="ascending"):
        make_clip(np.zeros((2, 4, 4, 3), np.uint8), [2.0, 1.0])
    with pytest.raises(AdapterInputError, match="question"):
        qwen_messages(sel, "  ")
    _, processor = tiny_qwen_vl("qwen2_vl")
    processor.chat_template = None  # a base checkpoint: Qwen's own ChatML layout, as its template writes it
    text = qwen_inputs(processor, sel, QUESTION).text
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert "<|vision_start|><|video_pad|><|vision_end|>The 2 video frames" in text


def test_qwen_vl_utils_path(monkeypatch):
    sel = fake_selection([0.0, 4.0, 8.0])
    messages = qwen_vl_utils_messages(sel, QUESTION, max_pixels=56 * 56)
    video = messages[0]["content"][0]
    assert len(video["video"]) == 3 and video["max_pixels"] == 56 * 56
    assert video["fps"] == pytest.approx(2.0 / 6.0)  # patches at 2 s and 8 s -> 6 s per patch

    # A minimal stand-in for qwen_vl_utils.process_vision_info with its list-of-frames behaviour:
    # frames passed through (padded to an even count), the entry's "fps" returned as video kwargs.
    def process_vision_info(conversations, return_video_kwargs=False):
        entries = [c for m in conversations for c in m["content"] if c.get("type") == "video"]
        videos = [list(e["video"]) + [e["video"][-1]] * (len(e["video"]) % 2) for e in entries]
        return None, videos, {"fps": [e["fps"] for e in entries]}

    monkeypatch.setitem(
        sys.modules, "qwen_vl_utils", types.SimpleNamespace(process_vision_info=process_vision_info)
    )
    model, processor = tiny_qwen_vl("qwen2_5_vl")
    built = qwen_vl_utils_inputs(processor, sel, QUESTION)
    np.testing.assert_allclose(qwen_fed_values(built.inputs, processor), [10, 30, 50, 50], atol=1.5)
    assert float(built.inputs["second_per_grid_ts"][0]) == pytest.approx(6.0)
    with torch.no_grad():
        model.generate(**built.inputs, max_new_tokens=2, do_sample=False)


def test_qwen_vl_utils_missing_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "qwen_vl_utils", None)
    _, processor = tiny_qwen_vl("qwen2_vl")
    with pytest.raises(ImportError, match="pip install qwen-vl-utils"):
        qwen_vl_utils_inputs(processor, fake_selection([0.0]), QUESTION)
