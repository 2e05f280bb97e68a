"""Feed tspo's frames to Qwen2-VL / Qwen2.5-VL through transformers.

Offline (tiny random model, synthetic video):
    python examples/plugin_qwen.py
Real weights:
    python examples/plugin_qwen.py --model Qwen/Qwen2.5-VL-7B-Instruct --selector org/tspo-selector \
        --video my.mp4 --question "What does the woman pick up?" --num-frames 16
"""

from __future__ import annotations

import torch
from _plugin_common import parser, select

from tspo.plugins.qwen import qwen_inputs
from tspo.plugins.tiny import tiny_qwen_vl


def main() -> None:
    p = parser(__doc__, "HF id of a Qwen2-VL / Qwen2.5-VL instruct model (default: tiny random Qwen2.5-VL)")
    p.add_argument(
        "--variant", choices=["qwen2_vl", "qwen2_5_vl"], default="qwen2_5_vl", help="tiny model kind"
    )
    args = p.parse_args()
    sel = select(args)
    if args.model:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(args.model)
        model = AutoModelForImageTextToText.from_pretrained(args.model, dtype="auto", device_map="auto")
    else:
        model, processor = tiny_qwen_vl(args.variant)
    built = qwen_inputs(processor, sel, args.question)
    print("video grid (t, h, w):", built.inputs["video_grid_thw"].tolist(), "| extra:", built.extra)
    inputs = built.inputs.to(model.device)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=32, do_sample=False)
    answer = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]
    print("answer:", answer if args.model else f"{answer!r} (tiny random model: noise)")


if __name__ == "__main__":
    main()
