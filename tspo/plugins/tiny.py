"""Tiny random video LLMs built offline: the one factory for tests, benchmarks and the runnable examples.

Each builder returns ``(model, processor)``: a transformers model from a small config with seeded
random weights and a processor assembled locally (a WordLevel tokenizer built on the spot covering
the adapters' and the oracles' prompt words, one token per option letter A-Z, the model's
image/video processors at 28..56-pixel frames, a minimal ChatML template). Nothing is downloaded.
Their answers are noise; their *inputs* are exactly what the real models get.
"""

from __future__ import annotations

import string
from typing import Any

import torch

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|video_pad|>", "<|image_pad|>", "<image>", "<video>"]
# the words of the adapters' prompts (plug-ins) and of the oracles' answer suffix
_WORDS = (
    "system user assistant you are a an helpful the video frames frame were taken sampled at s what which is "
    "does do in of on to and question answer options option with letter from given choices directly lasts for "
    "seconds are it these located please following questions related this colour ball cup dog cat bird fish "
    "red green blue person pick up"
).split()

_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'video' %}{{ VIDEO }}{% elif c['type'] == 'image' %}{{ IMAGE }}"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` (word level): special tokens, A-Z, a-z, digits, punctuation, prompt words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = list(string.ascii_uppercase) + list(string.ascii_lowercase) + list(string.digits)
    words += list(".,:;?!()'-") + [w for w in _WORDS if len(w) > 1] + [w.capitalize() for w in _WORDS if len(w) > 1]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(SPECIAL_TOKENS + ["[UNK]"] + words))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(), pre_tokenizers.Digits(individual_digits=True)]
    )
    backend.decoder = decoders.WordPiece(prefix="##")  # joins word tokens with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="<|endoftext|>", eos_token="<|im_end|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )


def _template(video: str, image: str) -> str:
    return _CHATML.replace("{{ VIDEO }}", video).replace("{{ IMAGE }}", image)


def tiny_qwen_vl(variant: str = "qwen2_5_vl", seed: int = 0, hidden_size: int = 32, num_layers: int = 1,
                 vision_depth: int = 1, frame_pixels: int = 56 * 56, chat_template: bool = True) -> tuple[Any, Any]:
    """A tiny random Qwen2-VL (``variant="qwen2_vl"``) or Qwen2.5-VL (``"qwen2_5_vl"``) and its processor.

    Frames are resized to 28 px .. ``frame_pixels`` in area (14-pixel patches, 2x2 merge, 2-frame
    temporal patches). ``chat_template=False``: a base checkpoint's processor (no chat template).
    """
    import transformers as tf

    classes = {
        "qwen2_vl": (tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor),
        "qwen2_5_vl": (tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLProcessor),
    }
    if variant not in classes:
        raise ValueError(f"variant must be one of {sorted(classes)}, got {variant!r}")
    config_cls, model_cls, processor_cls = classes[variant]
    tok = tiny_tokenizer()
    sizes = dict(min_pixels=28 * 28, max_pixels=max(frame_pixels, 28 * 28), patch_size=14, merge_size=2,
                 temporal_patch_size=2)
    processor = processor_cls(
        image_processor=tf.Qwen2VLImageProcessor(**sizes),
        video_processor=tf.Qwen2VLVideoProcessor(**sizes, cap_pixels_per_frame=True),
        tokenizer=tok,
        chat_template=_template("<|vision_start|><|video_pad|><|vision_end|>",
                                "<|vision_start|><|image_pad|><|vision_end|>") if chat_template else None,
    )
    ids = tok.convert_tokens_to_ids
    heads = max(2, hidden_size // 16)   # head dim 16: twice the mrope sections' 2 + 3 + 3
    text = dict(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), max_position_embeddings=4096, bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
    )  # fmt: skip
    vision = dict(
        depth=vision_depth, embed_dim=32, hidden_size=32, out_hidden_size=hidden_size, num_heads=2, patch_size=14,
        spatial_merge_size=2, temporal_patch_size=2, in_chans=3, intermediate_size=64,
        fullatt_block_indexes=[vision_depth - 1], window_size=28,
    )  # fmt: skip
    if variant == "qwen2_vl":
        vision["hidden_size"] = hidden_size   # Qwen2-VL's merger projects to the text width through hidden_size
    config = config_cls(
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    return _seeded(model_cls, config, seed), processor


def tiny_llava_onevision(seed: int = 0, hidden_size: int = 32, num_layers: int = 1,
                         chat_template: bool = True) -> tuple[Any, Any]:
    """A tiny random LLaVA-OneVision (SigLIP 28-pixel frames, one 2x2 patch grid, Qwen2 LM) and its processor."""
    import transformers as tf

    tok = tiny_tokenizer()
    square = {"height": 28, "width": 28}
    processor = tf.LlavaOnevisionProcessor(
        image_processor=tf.LlavaOnevisionImageProcessor(
            size=square, crop_size=square, image_grid_pinpoints=[[28, 28]]
        ),
        video_processor=tf.LlavaOnevisionVideoProcessor(size=square),
        tokenizer=tok,
        chat_template=_template("<video>", "<image>") if chat_template else None,
        num_image_tokens=4,
        vision_feature_select_strategy="full",
    )
    config = tf.LlavaOnevisionConfig(
        vision_config=dict(
            model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, image_size=28, patch_size=14,
        ),
        text_config=dict(
            model_type="qwen2", vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
            num_hidden_layers=num_layers, num_attention_heads=2, num_key_value_heads=1, bos_token_id=tok.eos_token_id,
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


__all__ = ["tiny_llava_onevision", "tiny_qwen_vl", "tiny_tokenizer"]
