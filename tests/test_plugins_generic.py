"""Generic adapters: image-list prompt with per-frame timestamps; OpenAI-compatible message with
base64 frames that decode back to the selected frames, in order."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from plugins_helpers import fake_selection, frame_value

from tspo.plugins import AdapterInputError
from tspo.plugins.generic import encode_frame, image_list_prompt, openai_messages

QUESTION = "What happens after the door opens?"


def test_image_list_prompt_interleaves_times_and_images():
    sel = fake_selection([0.0, 12.0, 12.5])
    prompt = image_list_prompt(sel, QUESTION)
    assert prompt.text.splitlines() == [
        "Frame at 0.0 s: <image>",
        "Frame at 12.0 s: <image>",
        "Frame at 12.5 s: <image>",
        QUESTION,
    ]
    assert [np.asarray(im)[0, 0, 0] for im in prompt.images] == [frame_value(i) for i in range(3)]
    np.testing.assert_array_equal(prompt.timestamps_s, [0.0, 12.0, 12.5])
    custom = image_list_prompt(sel, QUESTION, image_token="<img>", frame_template="[{t}s] {image}")
    assert custom.text.startswith("[0.0s] <img>\n[12.0s] <img>")


def test_openai_message_frames_decode_in_order():
    sel = fake_selection([1.0, 2.0, 2.04, 30.0])
    messages = openai_messages(
        sel, QUESTION, system="Answer with a letter.", image_format="png", detail="low"
    )
    assert messages[0] == {"role": "system", "content": "Answer with a letter."}
    content = messages[1]["content"]
    labels = [c["text"] for c in content if c["type"] == "text"]
    assert labels == [
        "Frame at 1.00 s:",
        "Frame at 2.00 s:",
        "Frame at 2.04 s:",
        "Frame at 30.00 s:",
        QUESTION,
    ]
    images = [c["image_url"] for c in content if c["type"] == "image_url"]
    assert all(im["detail"] == "low" for im in images)
    for i, im in enumerate(images):
        header, payload = im["url"].split(",", 1)
        assert header == "data:image/png;base64"
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))
        np.testing.assert_array_equal(pixels, sel.frames[i])  # png: lossless
    assert [c["type"] for c in content[:4]] == ["text", "image_url", "text", "image_url"]


def test_jpeg_default_roughly_preserves_pixels():
    url = encode_frame(np.full((16, 16, 3), 200, np.uint8))
    assert url.startswith("data:image/jpeg;base64,")
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert abs(int(pixels.mean()) - 200) <= 2


def test_errors_name_the_fix():
    sel = fake_selection([0.0, 1.0])
    with pytest.raises(AdapterInputError, match=r"\{image\}"):
        image_list_prompt(sel, QUESTION, frame_template="Frame at {t}")
    with pytest.raises(AdapterInputError, match="image_format"):
        openai_messages(sel, QUESTION, image_format="gif")
    with pytest.raises(AdapterInputError, match="detail"):
        openai_messages(sel, QUESTION, detail="max")
    sel.frames = sel.frames.astype(np.float32)
    with pytest.raises(AdapterInputError, match="uint8"):
        openai_messages(sel, QUESTION)
    sel.frames = None
    with pytest.raises(AdapterInputError, match="return_frames=True"):
        image_list_prompt(sel, QUESTION)
