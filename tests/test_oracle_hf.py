"""HFVideoLLMOracle end to end on tiny random Qwen2-VL / Qwen2.5-VL built offline."""

import types

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from tspo.plugins import llava, qwen  # noqa: E402
from tspo.plugins import tiny as plugin_tiny  # noqa: E402
from tspo.plugins._clip import render_chat  # noqa: E402
from tspo.plugins.tiny import tiny_llava_onevision, tiny_qwen_vl  # noqa: E402
from tspo.rewards import HFVideoLLMOracle, OracleConfigError, OracleQuery, parse_option  # noqa: E402
from tspo.rewards.hf_adapters import ADAPTERS  # noqa: E402
from tspo.rewards.oracle import answer_suffix, query_clip, question_text  # noqa: E402

pytestmark = pytest.mark.hf

OPTIONS = ("red ball", "blue cup", "dog", "cat")


def make_queries(n=4, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return [
        OracleQuery(f"s{i}", "what does the person pick up?", OPTIONS[: 2 + i % 3],
                    np.sort(rng.uniform(0, 60, k)), frames=rng.integers(0, 255, (k, 56, 56, 3), dtype=np.uint8))
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def qwen2():
    return tiny_qwen_vl("qwen2_vl", chat_template=False)   # a base checkpoint: Qwen's ChatML fallback


def test_score_mode_batched_equals_one_by_one(qwen2):
    oracle = HFVideoLLMOracle(*qwen2)
    queries = make_queries(4)
    batched = oracle.answer(queries)
    for query, ans in zip(queries, batched):
        assert ans.ok and ans.letter in query.letters
        assert set(ans.option_probs) == set(query.letters)
        assert sum(ans.option_probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert ans.letter == max(ans.option_probs, key=ans.option_probs.get)
        alone = oracle.answer([query])[0]  # left padding must not change a row's answer
        for c in query.letters:
            assert alone.option_probs[c] == pytest.approx(ans.option_probs[c], abs=1e-4)


def test_letter_logits_drive_the_answer(qwen2):
    model, processor = qwen2
    oracle = HFVideoLLMOracle(model, processor)
    c_id = processor.tokenizer.convert_tokens_to_ids("C")

    def favour_c(module, inputs, output):
        output = output.clone()
        output[..., c_id] += 50.0
        return output

    handle = model.lm_head.register_forward_hook(favour_c)
    try:
        out = oracle.answer(make_queries(3))
    finally:
        handle.remove()
    # query 0 has only A/B: C is masked out; queries 1, 2 have C and must pick it with ~certainty
    assert out[0].letter in "AB" and set(out[0].option_probs) == {"A", "B"}
    assert out[1].letter == "C" and out[2].letter == "C"
    assert out[2].option_probs["C"] > 0.99


def test_chunked_batches_match(qwen2):
    queries = make_queries(3)
    full = HFVideoLLMOracle(*qwen2).answer(queries)
    chunked = HFVideoLLMOracle(*qwen2, batch_size=2).answer(queries)
    assert [a.letter for a in full] == [a.letter for a in chunked]


def test_generate_mode_parses_the_generated_text(qwen2):
    oracle = HFVideoLLMOracle(*qwen2, mode="generate", max_new_tokens=4)
    queries = make_queries(2)
    out = oracle.answer(queries)
    for q, a in zip(queries, out):
        assert isinstance(a.raw, str) and a.error is None
        assert a.letter == parse_option(a.raw, len(q.options), q.options)


def test_prompt_carries_timestamps_and_options(qwen2):
    oracle = HFVideoLLMOracle(*qwen2)
    query = make_queries(1)[0]
    _, _, (prompt,) = oracle.adapter.build(oracle.processor, [query_clip(query)], [question_text(query)])
    assert f"taken at {query.timestamps_s[0]:.1f}s, {query.timestamps_s[1]:.1f}s" in prompt
    assert "A. red ball\nB. blue cup" in prompt and prompt.endswith("<|im_start|>assistant\n")
    text = oracle.tokenizer.decode(oracle._inputs([query])["input_ids"][0])
    assert "red ball" in text and "Options" in text and text.count("<|video_pad|>") == 8  # 4 frames of 56x56: 2 time x 4 merged patches


def test_runtime_failure_becomes_counted_failed_answers(qwen2):
    model, processor = qwen2
    oracle = HFVideoLLMOracle(model, processor)

    def boom(module, inputs, output):
        raise RuntimeError("CUDA out of memory (simulated)")

    handle = model.lm_head.register_forward_hook(boom)
    try:
        out = oracle.answer(make_queries(2))
    finally:
        handle.remove()
    assert [a.ok for a in out] == [False, False]
    assert all("out of memory" in a.error for a in out)


def test_qwen2_5_vl_end_to_end_with_seconds_aligned_video():
    model, processor = tiny_qwen_vl("qwen2_5_vl")
    oracle = HFVideoLLMOracle(model, processor)
    queries = make_queries(2)
    inputs = oracle._inputs(queries)
    expected = torch.tensor([qwen.seconds_per_grid(q.timestamps_s, 2) for q in queries])  # from the real times
    assert torch.allclose(inputs["second_per_grid_ts"].float(), expected, rtol=1e-4)
    assert all(a.ok for a in oracle.answer(queries))


def test_llava_onevision_end_to_end_batched_equals_single():
    oracle = HFVideoLLMOracle(*tiny_llava_onevision())
    queries = make_queries(3)
    batched = oracle.answer(queries)
    assert all(a.ok for a in batched)
    text = oracle.tokenizer.decode(oracle._inputs(queries[:1])["input_ids"][0])
    assert "<video>" in text
    for query, ans in zip(queries, batched):
        alone = oracle.answer([query])[0]
        for c in query.letters:
            assert alone.option_probs[c] == pytest.approx(ans.option_probs[c], abs=1e-4)


def test_save_and_load_from_local_directory(qwen2, tmp_path):
    model, processor = qwen2
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = HFVideoLLMOracle.from_pretrained(str(tmp_path), local_files_only=True)
    queries = make_queries(2)
    assert [a.letter for a in loaded.answer(queries)] == [a.letter for a in HFVideoLLMOracle(*qwen2).answer(queries)]


def test_model_without_adapter_is_a_clear_error(qwen2):
    fake = types.SimpleNamespace(config=types.SimpleNamespace(model_type="gpt2"))
    with pytest.raises(OracleConfigError, match="no adapter for model_type='gpt2'.*qwen2_5_vl"):
        HFVideoLLMOracle(fake, qwen2[1])
    assert {"qwen2_vl", "qwen2_5_vl", "llava_onevision"} <= set(ADAPTERS)


def test_missing_weights_offline_is_actionable(tmp_path):
    with pytest.raises(OracleConfigError, match="huggingface-cli download"):
        HFVideoLLMOracle.from_pretrained("Qwen/Qwen2-VL-2B-Instruct-not-cached", local_files_only=True)
    with pytest.raises(OracleConfigError, match="could not load"):
        HFVideoLLMOracle.from_pretrained(str(tmp_path / "empty"), local_files_only=True)


def test_bad_settings(qwen2):
    with pytest.raises(OracleConfigError, match="mode"):
        HFVideoLLMOracle(*qwen2, mode="sample")
    with pytest.raises(OracleConfigError, match="batch_size"):
        HFVideoLLMOracle(*qwen2, batch_size=0)
    with pytest.raises(ValueError, match="needs pixels"):
        HFVideoLLMOracle(*qwen2).answer([OracleQuery("s", "q", ("a", "b"), [0.0])])


def test_llava_onevision_fallback_prompt_has_video_token():
    messages = llava.llava_messages(query_clip(make_queries(1)[0]), "Q?")
    text = render_chat(types.SimpleNamespace(chat_template=None), messages, llava.VIDEO_TOKEN)
    assert "<video>" in text and text.endswith("assistant\n")


def test_processor_frame_sampling_never_resamples_the_selection(qwen2, monkeypatch):
    """A processor config with frame sampling on (num_frames=2) must still see all k picked frames."""
    model, processor = qwen2
    monkeypatch.setattr(processor.video_processor, "do_sample_frames", True)
    monkeypatch.setattr(processor.video_processor, "num_frames", 2)
    oracle = HFVideoLLMOracle(model, processor)
    queries = make_queries(2, k=8)
    grid = oracle._inputs(queries)["video_grid_thw"]
    assert grid[:, 0].tolist() == [4, 4]                        # 8 frames / temporal patch 2, not 2 / 2
    assert all(a.ok for a in oracle.answer(queries))
    model, processor = tiny_llava_onevision()
    monkeypatch.setattr(processor.video_processor, "do_sample_frames", True)
    monkeypatch.setattr(processor.video_processor, "num_frames", 2)
    assert HFVideoLLMOracle(model, processor)._inputs(queries)["pixel_values_videos"].shape[1] == 8


def test_letter_scores_gather_every_token_variant(qwen2):
    """Letter logit = logsumexp over its token variants ("A", " A"); checked against a per-letter loop
    with two variants for some letters (the tiny tokenizer has one) and padding for the others."""
    model, processor = qwen2
    oracle = HFVideoLLMOracle(model, processor)
    extra = processor.tokenizer.convert_tokens_to_ids(["a", "c"])
    variants = [[int(i)] for i in oracle._letter_index[:, 0]]
    variants[0].append(extra[0])
    variants[2].append(extra[1])
    oracle._letter_index = torch.tensor([v + [v[0]] * (2 - len(v)) for v in variants])
    oracle._letter_mask = torch.tensor([[True, len(v) == 2] for v in variants])
    seen = []
    handle = model.lm_head.register_forward_hook(lambda mod, inp, out: seen.append(out[:, -1].float()))
    try:
        queries = make_queries(3)
        out = oracle.answer(queries)
    finally:
        handle.remove()
    logits = seen[0]
    for i, (query, ans) in enumerate(zip(queries, out)):
        per_letter = torch.stack([torch.logsumexp(logits[i, variants[j]], 0) for j in range(len(query.options))])
        expected = torch.softmax(per_letter, 0)
        got = torch.tensor([ans.option_probs[c] for c in query.letters])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_oracle_id_names_the_processor_frame_size(qwen2, monkeypatch):
    model, processor = qwen2
    default = HFVideoLLMOracle(model, processor).oracle_id
    assert "longest_edge=3136" in default and "shortest_edge=784" in default
    monkeypatch.setattr(processor.video_processor, "size", {"height": 64, "width": 64})
    assert HFVideoLLMOracle(model, processor).oracle_id.endswith("px[height=64,width=64])")


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "llava_onevision"])
def test_oracle_inputs_equal_the_deployed_adapters_inputs(family):
    """Train/serve parity: for one selection the oracle feeds the model exactly what the plug-in
    feeds it for the same question, apart from the options + answer-format suffix."""
    if family == "llava_onevision":
        model, processor = plugin_tiny.tiny_llava_onevision()
        build = llava.llava_inputs
    else:
        model, processor = plugin_tiny.tiny_qwen_vl(family)
        build = qwen.qwen_inputs
    query = make_queries(1, k=5)[0]
    got = HFVideoLLMOracle(model, processor)._inputs([query])
    selection = types.SimpleNamespace(frames=query.frames, timestamps=query.timestamps_s, indices=np.arange(5))
    want = build(processor, selection, query.question + answer_suffix(query)).inputs
    assert set(got) == set(want)
    for key in want:
        torch.testing.assert_close(torch.as_tensor(got[key]), torch.as_tensor(want[key]), msg=key)
