"""The encoder that loads only on a cache miss (tspo.features.encoder_cache): a question about a cached video
gives the same selection without building the CLIP model or importing open_clip; new texts,
changed weights and damaged entries are never served stale."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from tspo.features.cache import FeatureCache
from tspo.features.encoder_cache import CachedEncoder, EncoderCardError, cached_encoder, encoder_identity
from tspo.features.encoders import SYNTH_WEIGHTS, load_encoder
from tspo.selection.selector import TSPOSelector


def test_second_selector_answers_a_cached_question_without_loading_the_model(short_video, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    first = TSPOSelector(encoder="tiny-random", cache=cache)
    assert first.encoder.loaded  # no card yet: it had to load, and wrote the card
    want = first.select(short_video, "Where is the red frame?", 4)

    again = TSPOSelector(encoder="tiny-random", cache=FeatureCache(tmp_path / "cache"))
    assert isinstance(again.encoder, CachedEncoder) and not again.encoder.loaded
    assert (again.encoder.dim, again.encoder.image_size) == (first.encoder.dim, first.encoder.image_size)
    got = again.select(short_video, "Where is the red frame?", 4)
    assert not again.encoder.loaded
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=1e-6)

    # a question never asked before needs the text tower: it loads, and matches a plain encoder
    emb = again.encoder.encode_text("What colour is the last frame?")
    assert again.encoder.loaded
    torch.testing.assert_close(emb, load_encoder("tiny-random").encode_text("What colour is the last frame?"))


def test_text_batches_mix_cached_and_new_texts_in_order(tmp_path):
    enc = cached_encoder("tiny-random", tmp_path)
    plain = load_encoder("tiny-random")
    enc.encode_texts(["a red square", "a blue ring"])
    lazy = cached_encoder("tiny-random", tmp_path)
    got = lazy.encode_texts(["a blue ring", "a green star", "a red square", "a blue ring"])
    torch.testing.assert_close(got, plain.encode_texts(["a blue ring", "a green star", "a red square", "a blue ring"]))
    with pytest.raises(ValueError, match="non-empty string"):
        lazy.encode_texts(["ok", "  "])


def test_a_cached_cli_select_never_imports_open_clip(short_video, tmp_path):
    args = [str(short_video), "When does it turn blue?", "-k", "3", "--encoder", "tiny-random",
            "--feature-cache", str(tmp_path / "fc"), "--json"]  # fmt: skip
    code = (
        "import json, sys, contextlib, io\nfrom tspo.cli import main\nout = io.StringIO()\n"
        f"with contextlib.redirect_stdout(out):\n    rc = main(['select', *{args!r}])\n"
        "print(json.dumps({'rc': rc, 'sel': json.loads(out.getvalue()), 'open_clip': 'open_clip' in sys.modules}))\n"
    )
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                       .stdout.strip().splitlines()[-1]) for _ in range(2)]  # fmt: skip
    assert [r["rc"] for r in runs] == [0, 0]
    assert runs[0]["open_clip"] and not runs[1]["open_clip"]
    assert runs[0]["sel"] == runs[1]["sel"]


def test_identity_follows_the_weights_file_device_and_dtype(tmp_path):
    weights = tmp_path / "w.safetensors"
    shutil.copyfile(SYNTH_WEIGHTS, weights)
    spec = f"tspo-synth:{weights}"
    before = encoder_identity(spec, "cpu", torch.float32)
    assert before == encoder_identity(spec, "cpu", torch.float32)
    assert before != encoder_identity(spec, "cpu", torch.float16)
    assert before != encoder_identity(spec, "cuda", torch.float32)
    with open(weights, "r+b") as fh:  # same size, different bytes: a retrained file
        fh.write(b"\x01\x02\x03\x04")
    assert encoder_identity(spec, "cpu", torch.float32) != before
    # weights that cannot be identified without loading them: no card, the eager path
    assert encoder_identity("hf-hub:org/model", "cpu", torch.float32) is None
    assert encoder_identity(f"tspo-synth:{tmp_path}/missing.safetensors", "cpu", torch.float32) is None


def test_damaged_text_entry_is_recomputed_and_a_wrong_card_is_refused(tmp_path, caplog):
    enc = cached_encoder("tiny-random", tmp_path)
    want = enc.encode_text("a red square")
    entry = enc._text_path("a red square")
    entry.write_bytes(b"not safetensors")
    lazy = cached_encoder("tiny-random", tmp_path)
    with caplog.at_level("WARNING"):
        torch.testing.assert_close(lazy.encode_text("a red square"), want)
    assert "unreadable text embedding" in caplog.text and lazy.loaded

    card = next((tmp_path / "encoders").glob("*.json"))
    card.write_text(json.dumps({**json.loads(card.read_text()), "dim": 65}))
    wrong = cached_encoder("tiny-random", tmp_path)
    assert wrong.dim == 65 and not wrong.loaded
    with pytest.raises(EncoderCardError, match="card was removed"):
        wrong.encode_text("a new text")
    assert not card.exists()
    assert cached_encoder("tiny-random", tmp_path).dim == 64  # rebuilt from the real model


def test_no_cache_means_a_plain_encoder(short_video):
    sel = TSPOSelector(encoder="tiny-random", cache=False)
    assert not isinstance(sel.encoder, CachedEncoder)
    assert sel.select(short_video, "q?", 2).indices.shape == (2,)


def test_weights_gone_after_the_card_was_written_is_a_clean_cli_error(short_video, tmp_path, monkeypatch, capsys):
    """The model loads lazily now, during the selection: a weights error there is exit 1, not a traceback."""
    import tspo.features.encoder_cache as encoder_cache
    from tspo.cli import main
    from tspo.features.encoders import EncoderWeightsError

    fc = str(tmp_path / "fc")
    assert main(["select", str(short_video), "q one?", "-k", "2", "--encoder", "tiny-random", "--feature-cache", fc]) == 0

    def gone(*a, **k):
        raise EncoderWeightsError("could not load the weights of encoder 'tiny-random' (offline)")

    monkeypatch.setattr(encoder_cache, "load_encoder", gone)
    capsys.readouterr()
    rc = main(["select", str(short_video), "a question never asked?", "-k", "2", "--encoder", "tiny-random",
               "--feature-cache", fc])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "could not load the weights" in err and "Traceback" not in err
