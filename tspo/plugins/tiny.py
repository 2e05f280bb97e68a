"""Tiny random video LLMs built offline, for tests and the runnable examples.

Each builder returns ``(model, processor)``: a transformers model from a small config with seeded
random weights and a processor assembled locally (a WordLevel tokenizer trained on the spot, the
model's image/video processors at 28-pixel frames, a minimal ChatML template). Nothing is
downloaded. Their answers are noise; their *inputs* are exactly what the real models get.
"""

from __future__ import annotations

from typing import Any

import torch

_WORDS = (
    "user assistant system the a an video frames frame were taken at s what which is does do in of on "
    "to and question answer options option lasts for seconds are sampled from it these located please "
    "following questions related this . , ? : ( ) A B C D"
).split()

_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'video' %}{{ VIDEO }}{% elif c['type'] == 'image' %}{{ IMAGE }}"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer(specials: list[str]) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokens = ["[UNK]", "<|endoftext|>", "<|im_start|>", "<|im_end|>", *specials]
    vocab = {tok: i for i, tok in enumerate(tokens + [w for w in dict.fromkeys(_WORDS) if w not in tokens])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=tokens[1:],
    )


def _template(video: str, image: str) -> str:
    return _CHATML.replace("{{ VIDEO }}", video).replace("{{ IMAGE }}", image)


def tiny_qwen_vl(variant: str = "qwen2_5_vl", seed: int = 0) -> tuple[Any, Any]:
    """A tiny random Qwen2-VL (``variant="qwen2_vl"``) or Qwen2.5-VL (``"qwen2_5_vl"``) and its processor.

    Frames are resized to 28..56 pixels a side (14-pixel patches, 2x2 merge, 2-frame temporal patches).
    """
    import transformers as tf

    classes = {
        "qwen2_vl": (tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor),
        "qwen2_5_vl": (tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLProcessor),
    }
    if variant not in classes:
        raise ValueError(f"variant must be one of {sorted(classes)}, got {variant!r}")
    config_cls, model_cls, processor_cls = classes[variant]
    tok = _tokenizer(["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"])
    sizes = dict(min_pixels=28 * 28, max_pixels=56 * 56, patch_size=14, merge_size=2, temporal_patch_size=2)
    processor = processor_cls(
        image_processor=tf.Qwen2VLImageProcessor(**sizes),
        video_processor=tf.Qwen2VLVideoProcessor(**sizes),
        tokenizer=tok,
        chat_template=_template(
            "<|vision_start|><|video_pad|><|vision_end|>", "<|vision_start|><|image_pad|><|vision_end|>"
        ),
    )
    ids = tok.convert_tokens_to_ids
    text = dict(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
    )  # fmt: skip
    vision = dict(
        depth=1, embed_dim=32, hidden_size=32, out_hidden_size=32, num_heads=2, patch_size=14, spatial_merge_size=2,
        temporal_patch_size=2, in_chans=3, intermediate_size=64, fullatt_block_indexes=[0], window_size=28,
    )  # fmt: skip
    config = config_cls(
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    return _seeded(model_cls, config, seed), processor


def tiny_llava_onevision(seed: int = 0) -> tuple[Any, Any]:
    """A tiny random LLaVA-OneVision (SigLIP 28-pixel frames, one 2x2 patch grid, Qwen2 LM) and its processor."""
    import transformers as tf

    tok = _tokenizer(["<image>", "<video>"])
    square = {"height": 28, "width": 28}
    processor = tf.LlavaOnevisionProcessor(
        image_processor=tf.LlavaOnevisionImageProcessor(
            size=square, crop_size=square, image_grid_pinpoints=[[28, 28]]
        ),
        video_processor=tf.LlavaOnevisionVideoProcessor(size=square),
        tokenizer=tok,
        chat_template=_template("<video>", "<image>"),
        num_image_tokens=4,
        vision_feature_select_strategy="full",
    )
    config = tf.LlavaOnevisionConfig(
        vision_config=dict(
            model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, image_size=28, patch_size=14,
        ),
        text_config=dict(
            model_type="qwen2", vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        video_token_id=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=[[28, 28]],
    )  # fmt: skip
    return _seeded(tf.LlavaOnevisionForConditionalGeneration, config, seed), processor


def _seeded(model_cls: Any, config: Any, seed: int) -> Any:
    # Seed only the initialisation, then restore the global RNG so callers' randomness is untouched.
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = model_cls(config)
    finally:
        torch.random.set_rng_state(state)
    return model.eval()


__all__ = ["tiny_llava_onevision", "tiny_qwen_vl"]
