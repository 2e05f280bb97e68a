"""Feed tspo's frames to LLaVA-OneVision / LLaVA-Video through transformers.

Offline (tiny random model, synthetic video):
    python examples/plugin_llava.py
Real weights:
    python examples/plugin_llava.py --model llava-hf/llava-onevision-qwen2-7b-ov-hf --style onevision \
        --selector org/tspo-selector --video my.mp4 --question "Why does the man stop?" --num-frames 16
    (a LLaVA-Video checkpoint in HF format: --style llava_video, which writes its time instruction)
"""

from __future__ import annotations

import torch
from _plugin_common import parser, select

from tspo.plugins.llava import STYLES, llava_inputs
from tspo.plugins.tiny import tiny_llava_onevision


def main() -> None:
    p = parser(
        __doc__, "HF id of a LLaVA-OneVision / LLaVA-Video model (default: tiny random LLaVA-OneVision)"
    )
    p.add_argument("--style", choices=STYLES, default="llava_video")
    args = p.parse_args()
    sel = select(args)
    if args.model:
        from transformers import AutoProcessor, LlavaOnevisionForConditionalGeneration

        processor = AutoProcessor.from_pretrained(args.model)
        model = LlavaOnevisionForConditionalGeneration.from_pretrained(
            args.model, dtype="auto", device_map="auto"
        )
    else:
        model, processor = tiny_llava_onevision()
    built = llava_inputs(processor, sel, args.question, style=args.style)
    print("pixel_values_videos:", tuple(built.inputs["pixel_values_videos"].shape))
    print("prompt:", built.text)
    inputs = built.inputs.to(model.device)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=32, do_sample=False)
    answer = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]
    print("answer:", answer if args.model else f"{answer!r} (tiny random model: noise)")


if __name__ == "__main__":
    main()
