"""LLaVA-OneVision / LLaVA-Video adapter: exactly the selected frames, in order, with their real
timestamps in the prompt; a tiny random model generates from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plugins_helpers import fake_selection, frame_value, llava_fed_values

from tspo.plugins import AdapterInputError
from tspo.plugins.llava import llava_inputs, llava_messages, video_duration_s
from tspo.plugins.tiny import tiny_llava_onevision

QUESTION = "what is in the video ?"


@pytest.fixture(scope="module")
def tiny():
    return tiny_llava_onevision()


@pytest.mark.parametrize("style", ["onevision", "llava_video"])
@pytest.mark.parametrize("timestamps", [[0.0, 2.0, 4.5], [3.0, 3.5, 8.0, 30.0, 31.0], [12.0]])
def test_inputs_hold_selected_frames_in_order_and_generate(tiny, style, timestamps):
    model, processor = tiny
    built = llava_inputs(processor, fake_selection(timestamps), QUESTION, style=style)
    k = len(timestamps)
    assert tuple(built.inputs["pixel_values_videos"].shape[:2]) == (1, k)
    np.testing.assert_allclose(
        llava_fed_values(built.inputs, processor), [frame_value(i) for i in range(k)], atol=1.5
    )
    np.testing.assert_array_equal(built.timestamps_s, timestamps)
    with torch.no_grad():
        out = model.generate(**built.inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > built.inputs["input_ids"].shape[1]


def test_llava_video_time_instruction_uses_real_times(tiny):
    _, processor = tiny
    sel = fake_selection([1.0, 2.5, 40.0])  # candidates every 1 s up to 40 s -> video lasts 41 s
    built = llava_inputs(processor, sel, QUESTION, style="llava_video")
    assert (
        "The video lasts for 41.00 seconds, and 3 frames are sampled from it. "
        "These frames are located at 1.00s,2.50s,40.00s." in built.text
    )
    assert built.text.index("<video>") < built.text.index("The video lasts") < built.text.index(QUESTION)
    given = llava_inputs(processor, sel, QUESTION, style="llava_video", duration_s=60.0)
    assert "lasts for 60.00 seconds" in given.text


def test_onevision_timestamp_line_optional(tiny):
    _, processor = tiny
    sel = fake_selection([1.0, 2.5])
    assert "taken at 1.0s, 2.5s." in llava_inputs(processor, sel, QUESTION).text
    assert "taken at" not in llava_inputs(processor, sel, QUESTION, timestamps_in_prompt=False).text


def test_duration_rules_and_errors():
    sel = fake_selection([1.0, 5.0])
    assert video_duration_s(sel) == pytest.approx(6.0)
    sel.candidate_timestamps = None
    assert video_duration_s(sel) == pytest.approx(5.0)
    with pytest.raises(AdapterInputError, match="style"):
        llava_messages(sel, QUESTION, style="llava-next")
    with pytest.raises(AdapterInputError, match="shorter than the last selected frame"):
        llava_messages(sel, QUESTION, style="llava_video", duration_s=2.0)
    with pytest.raises(AdapterInputError, match="video_processor"):
        llava_inputs(object(), sel, QUESTION)
