"""Encoders from spec strings: tiny-random offline, clear errors for missing weights and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tspo.features.encoders import EncoderWeightsError, load_encoder, parse_spec


def test_spec_parsing():
    assert parse_spec("ViT-L-14:openai") == ("ViT-L-14", "openai")
    assert parse_spec("ViT-L-14:/w/open_clip.bin") == ("ViT-L-14", "/w/open_clip.bin")
    assert parse_spec("hf-hub:org/repo") == ("hf-hub:org/repo", None)
    for bad in ("", "   ", "ViT-L-14", "ViT-L-14:"):
        with pytest.raises(ValueError, match="encoder spec"):
            parse_spec(bad)


def test_tiny_random_is_deterministic_and_shaped(tiny_encoder):
    assert tiny_encoder.dim == 64 and tiny_encoder.image_size == 32
    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    feats = tiny_encoder.encode_frames(frames)
    assert feats.shape == (3, 64) and feats.dtype == torch.float32
    state = torch.get_rng_state()
    again = load_encoder("tiny-random")
    assert torch.equal(torch.get_rng_state(), state)  # building it leaves the caller's RNG alone
    torch.testing.assert_close(again.encode_frames(frames), feats)
    torch.testing.assert_close(again.encode_text("a red star"), tiny_encoder.encode_text("a red star"))
    # batching does not change results
    torch.testing.assert_close(tiny_encoder.encode_frames(frames, batch_size=1), feats, atol=1e-5, rtol=1e-5)
    texts = tiny_encoder.encode_texts(["a", "b c"])
    assert texts.shape == (2, 64)


def test_long_question_is_truncated_with_a_warning(tiny_encoder):
    with pytest.warns(UserWarning, match="truncated"):
        emb = tiny_encoder.encode_text("why " * 200)
    assert emb.shape == (64,)


def test_missing_weights_offline_say_how_to_supply_a_file(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderWeightsError) as err:
        load_encoder("RN50:openai")
    msg = str(err.value)
    assert "HF_HUB_OFFLINE=1" in msg and "RN50:/path/to/weights.bin" in msg and "tiny-random" in msg


def test_local_weights_path_errors(tmp_path):
    with pytest.raises(EncoderWeightsError, match="does not exist"):
        load_encoder(f"ViT-B-32:{tmp_path / 'missing.bin'}")
    bad = tmp_path / "garbage.bin"
    bad.write_bytes(b"not weights")
    with pytest.raises(EncoderWeightsError, match="could not load the weights"):
        load_encoder(f"RN50:{bad}")
    with pytest.raises(ValueError, match="unknown open_clip architecture"):
        load_encoder("NotAModel-42:openai")


@pytest.mark.parametrize(
    "frames,match",
    [
        (np.zeros((2, 8, 8), np.uint8), r"uint8 \[T, H, W, 3\]"),
        (np.zeros((2, 8, 8, 3), np.float32), "must be uint8"),
        (np.zeros((0, 8, 8, 3), np.uint8), "empty"),
    ],
)
def test_bad_frames(tiny_encoder, frames, match):
    with pytest.raises(ValueError, match=match):
        tiny_encoder.encode_frames(frames)


def test_bad_text(tiny_encoder):
    for bad in ("", "  ", None):
        with pytest.raises(ValueError, match="non-empty"):
            tiny_encoder.encode_text(bad)
