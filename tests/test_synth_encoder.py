"""`tspo synth encoder`: captions and their positives, a reproducible open_clip checkpoint that every
encoder spec form loads, and the shipped `tspo-synth` encoder actually seeing the synthetic world."""

import json

import numpy as np
import pytest
import torch

from tspo.data_synth.encoder_training import (
    ANY,
    SOME,
    EncoderTrainConfig,
    caption_matches,
    make_caption,
    render_attributes,
    retrieval_accuracy,
    sample_attributes,
    save_encoder,
    train_encoder,
)
from tspo.features.encoders import SYNTH_WEIGHTS, load_encoder


def test_caption_constraints_pick_every_positive():
    attrs = np.array([[0, 1, 2, -1], [0, 2, 2, 3], [4, 1, 0, 5]])       # (shape, colour, bg, word)
    cons = np.array([
        [[0, ANY, ANY, ANY]] * 2,                                        # "a circle"
        [[ANY, 1, ANY, ANY]] * 2,                                        # "a red shape"
        [[ANY, ANY, ANY, SOME]] * 2,                                     # "which word is written?"
        [[ANY, ANY, ANY, 3]] * 2,                                        # "the word ..."
        [[0, 2, ANY, ANY], [4, 1, ANY, ANY]],                            # "which came first, A or B?"
    ])
    assert caption_matches(attrs, cons).tolist() == [
        [True, True, False, False, False],
        [True, False, True, True, True],
        [False, True, True, False, True],
    ]


def test_every_caption_fits_its_own_frame():
    rng = np.random.default_rng(0)
    attrs = sample_attributes(rng, 300, 0.5)
    texts, cons = zip(*(make_caption(a, rng) for a in attrs))
    assert caption_matches(attrs, np.stack(cons)).diagonal().all()
    assert len(set(texts)) > 150 and any("right after" in t for t in texts) and any("word" in t for t in texts)


def test_training_is_reproducible_and_every_spec_form_loads(tmp_path):
    cfg = EncoderTrainConfig(steps=2, batch=8, pool=16, heldout=16, warmup=1)
    model_a, metrics, seconds = train_encoder(cfg, progress=False)
    model_b, _, _ = train_encoder(cfg, progress=False)
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    path = save_encoder(model_a, tmp_path / "enc", cfg, metrics, seconds)
    info = json.loads((tmp_path / "enc" / "open_clip_config.json").read_text())
    assert info["tspo"]["heldout_top1"] == metrics and set(metrics) == {"shape", "colour", "word"}
    frames = np.stack(render_attributes(sample_attributes(np.random.default_rng(1), 4, 0.5),
                                        np.random.default_rng(1), (64,)))
    outs = [load_encoder(spec).encode_frames(frames) for spec in (f"tspo-synth:{path}", f"local-dir:{tmp_path / 'enc'}")]
    assert outs[0].shape == (4, 64) and torch.allclose(outs[0], outs[1])
    with pytest.raises(Exception, match="does not exist"):
        load_encoder(f"tspo-synth:{tmp_path / 'missing.safetensors'}")


def test_shipped_encoder_sees_shapes_colours_and_words():
    import open_clip

    enc = load_encoder("tspo-synth")
    assert SYNTH_WEIGHTS.is_file() and SYNTH_WEIGHTS.stat().st_size < 8e6 and enc.dim == 64
    rng = np.random.default_rng(123)                                    # unseen draws (training used 0 and 10007)
    attrs = sample_attributes(rng, 200, 0.5)
    images = torch.cat([enc._preprocess(torch.from_numpy(f[None])) for f in render_attributes(attrs, rng, (96,))])
    top1 = retrieval_accuracy(enc.model, open_clip.get_tokenizer("tspo-synth"), images, attrs)
    assert top1["shape"] >= 0.85 and top1["colour"] >= 0.9, top1
    assert top1["word"] >= 0.7, top1                                    # chance: 0.1 (10 words)
