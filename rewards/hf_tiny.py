"""Tiny random Qwen2-VL / Qwen2.5-VL / LLaVA-OneVision models with a locally built tokenizer and processor.

For tests and benchmarks of :class:`HFVideoLLMOracle` without any download: the weights are
random (seeded), the tokenizer is a word-level vocabulary covering the oracle's prompt, with the
Qwen special tokens and one token per option letter. Answers are meaningless; shapes, batching,
padding and the letter-scoring path are real.
"""

from __future__ import annotations

import string
from typing import Any

from .hf_oracle import _import_transformers

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|video_pad|>", "<|image_pad|>", "<image>", "<video>"]
_WORDS = (
    "system user assistant you are a helpful the video frames were sampled at question options answer with "
    "option letter from given choices directly what which is in s colour ball cup dog cat bird fish red green "
    "blue does person do pick up"
).split()


def tiny_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` (word level): special tokens, A-Z, a-z, digits, punctuation, prompt words."""
    tf = _import_transformers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words = list(string.ascii_uppercase) + list(string.ascii_lowercase) + list(string.digits)
    words += list(".,:;?!()'-") + [w for w in _WORDS if len(w) > 1] + [w.capitalize() for w in _WORDS if len(w) > 1]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(SPECIAL_TOKENS + ["[UNK]"] + words))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(), pre_tokenizers.Digits(individual_digits=True)]
    )
    backend.decoder = decoders.WordPiece(prefix="##")  # joins word tokens with spaces
    return tf.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="<|endoftext|>", eos_token="<|im_end|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )


def tiny_qwen_vl(model_type: str = "qwen2_vl", seed: int = 0, hidden_size: int = 64, num_layers: int = 2,
                 vision_depth: int = 2, frame_pixels: int = 56 * 56) -> tuple[Any, Any]:
    """(model, processor) for ``qwen2_vl`` or ``qwen2_5_vl`` with random weights, in eval mode.

    ``frame_pixels`` bounds each frame's resized area (56x56 -> 4 merged visual tokens per frame pair).
    """
    tf = _import_transformers()
    import torch

    tok = tiny_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = dict(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=4096, pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"],
                rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0})
    common = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    size = {"shortest_edge": 28 * 28, "longest_edge": max(frame_pixels, 28 * 28)}
    video_processor = tf.Qwen2VLVideoProcessor(size=size, patch_size=14, temporal_patch_size=2, merge_size=2,
                                               cap_pixels_per_frame=True)
    image_processor = tf.Qwen2VLImageProcessor(size=size)
    if model_type == "qwen2_vl":
        vision = dict(depth=vision_depth, embed_dim=32, hidden_size=hidden_size, num_heads=2, mlp_ratio=2,
                      patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
        config = tf.Qwen2VLConfig(text_config=text, vision_config=vision, **common)
        model_cls, proc_cls = tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor
    elif model_type == "qwen2_5_vl":
        vision = dict(depth=vision_depth, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden_size,
                      patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                      fullatt_block_indexes=[vision_depth - 1])
        config = tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
        model_cls, proc_cls = tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLProcessor
    else:
        raise ValueError(f"tiny_qwen_vl builds 'qwen2_vl' or 'qwen2_5_vl', not {model_type!r}")
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    processor = proc_cls(image_processor=image_processor, tokenizer=tok, video_processor=video_processor)
    return model, processor


def tiny_llava_onevision(seed: int = 0, hidden_size: int = 64, num_layers: int = 2) -> tuple[Any, Any]:
    """(model, processor) for ``llava_onevision`` (SigLIP 32 px, 8 px patches + Qwen2), random weights."""
    tf = _import_transformers()
    import torch

    tok = tiny_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = tf.LlavaOnevisionConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, patch_size=8,
                           image_size=32, num_hidden_layers=1, num_attention_heads=2, vision_use_head=False),
        text_config=dict(model_type="qwen2", vocab_size=len(tok), hidden_size=hidden_size,
                         intermediate_size=2 * hidden_size, num_hidden_layers=num_layers, num_attention_heads=4,
                         num_key_value_heads=2, pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"]),
        image_token_index=ids["<image>"], video_token_index=ids["<video>"], image_grid_pinpoints=[[32, 32]],
    )
    torch.manual_seed(seed)
    model = tf.LlavaOnevisionForConditionalGeneration(config).eval()
    processor = tf.LlavaOnevisionProcessor(
        image_processor=tf.LlavaOnevisionImageProcessor(size={"height": 32, "width": 32}, image_grid_pinpoints=[[32, 32]]),
        video_processor=tf.LlavaOnevisionVideoProcessor(size={"height": 32, "width": 32}),
        tokenizer=tok, num_image_tokens=16, vision_feature_select_strategy="full",
    )
    return model, processor
