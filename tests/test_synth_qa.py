"""QA augmentation: localising questions from event descriptions; annotation and HF captioners."""

import numpy as np
import pytest

from tspo.cli.synth import main as synth_main
from tspo.data_synth import EventDescription, Sample, augment_sample, make_mcq, render_dataset, write_manifest
from tspo.data_synth.captioners import AnnotationCaptioner, HFCaptioner
from tspo.data_synth.qa import QAError, augment_samples, merge_descriptions

EVENTS = [EventDescription(0, 4, "a red star"), EventDescription(4, 8, "a blue ring"),
          EventDescription(8, 12, "a red star"), EventDescription(12, 15, "a green cross")]
OTHERS = ["a cat", "a dog", "a car", "a blue ring", "a boat"]


@pytest.mark.parametrize("style", ["which", "after", "before"])
def test_mcq_has_one_option_from_this_clip(style):
    for seed in range(15):
        qa = make_mcq(EVENTS, OTHERS, np.random.default_rng(seed), styles=(style,))
        own = {e.text for e in EVENTS}
        assert len(qa["options"]) == 4 == len(set(qa["options"]))
        right = qa["options"]["ABCD".index(qa["answer"])]
        assert right in own and sum(o in own for o in qa["options"]) == 1   # distractors: other clips only
        spans = qa["evidence_spans_s"]
        assert all(any(e.start_s == a and e.end_s == b for e in EVENTS) for a, b in spans)
        if qa["qa_style"] != "which":
            anchor = qa["question"].removeprefix(f"What happens right {style} ").rstrip("?")
            assert anchor != "a red star"                     # the anchor must be unique in the clip
            i = next(k for k, e in enumerate(EVENTS) if e.text == anchor)
            assert right == EVENTS[i + 1 if style == "after" else i - 1].text and len(spans) == 2


def test_mcq_errors_and_merging():
    with pytest.raises(QAError, match="no event descriptions"):
        make_mcq([], OTHERS, np.random.default_rng(0))
    with pytest.raises(QAError, match="need 3 distractor descriptions"):
        make_mcq(EVENTS, ["a cat", "a red star"], np.random.default_rng(0))
    merged = merge_descriptions([EventDescription(0, 2, "x"), EventDescription(2, 4, "x"), EventDescription(4, 6, "y")])
    assert merged == [EventDescription(0, 4, "x"), EventDescription(4, 6, "y")]


def test_annotation_captioner_and_augment_cli(tmp_path, capsys):
    samples = render_dataset(tmp_path / "t", 4, seed=0, min_seconds=12, max_seconds=14, fps=1, size=32,
                             progress=False)
    events = AnnotationCaptioner().describe(samples[0])
    assert events[0].start_s == 0 and events[-1].end_s == samples[0].duration_s
    assert events[0].text.startswith("a ") and "background" in events[0].text
    s = Sample("c", "v.mp4", "Q?", ["x", "y"], "A", duration_s=6.0, extra={"captions": [[0, 6, "a cat sits"]]})
    assert AnnotationCaptioner().describe(s) == [EventDescription(0.0, 6.0, "a cat sits")]
    with pytest.raises(QAError, match="no annotations"):
        AnnotationCaptioner().describe(Sample("d", "v.mp4", "Q?", ["x", "y"], "A", duration_s=6.0))
    out = augment_samples(samples, AnnotationCaptioner(), seed=1, progress=False)
    for old, new in zip(samples, out):
        assert new.extra["original_qa"]["question"] == old.question and new.video == old.video
        assert all(a >= 0 and b <= new.duration_s for a, b in new.evidence_spans_s)
    src = write_manifest(tmp_path / "t" / "manifest.jsonl", samples)
    assert synth_main(["qa", "--manifest", str(src), "--out", str(tmp_path / "qa.jsonl"), "--seed", "1"]) == 0
    assert "rewrote 4 question(s)" in capsys.readouterr().out
    aug = augment_sample(samples[0], EVENTS, OTHERS, np.random.default_rng(0))
    assert aug.id == samples[0].id and aug.extra["qa_style"] in ("which", "after", "before")


def _tiny_blip(tmp_path):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
        PreTrainedTokenizerFast,
    )

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "red", "blue", "star", "ring", "on", "the"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", bos_token="[DEC]")
    cfg = BlipConfig(
        text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=5, pad_token_id=0,
                         sep_token_id=3, eos_token_id=3),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=32)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(cfg)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer)
    model.save_pretrained(tmp_path / "blip")
    processor.save_pretrained(tmp_path / "blip")
    return tmp_path / "blip"


@pytest.mark.hf
def test_hf_captioner_with_a_tiny_random_model(tmp_path):
    pytest.importorskip("transformers")
    path = _tiny_blip(tmp_path)
    cap = HFCaptioner.from_pretrained(str(path), every_s=3.0, max_new_tokens=4, frame_size=32, batch_size=2)
    samples = render_dataset(tmp_path / "t", 2, seed=0, min_seconds=9, max_seconds=9, fps=1, size=32,
                             progress=False)
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    texts = cap.caption_frames(frames)
    assert len(texts) == 3 and len(set(texts)) == 1 and all(isinstance(t, str) and t for t in texts)
    events = cap.describe(samples[0])
    assert events[0].start_s == 0.0 and events[-1].end_s == 9.0
    assert all(a.end_s == b.start_s for a, b in zip(events, events[1:]))
    assert events == cap.describe(samples[0])                      # greedy: deterministic
    with pytest.raises(QAError, match="could not load an image-text model"):
        HFCaptioner.from_pretrained(str(tmp_path / "nope"))
