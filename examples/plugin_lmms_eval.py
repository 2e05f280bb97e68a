"""Evaluate an lmms-eval video model with tspo's frames in front of it (no fork of lmms-eval).

Offline check of the plug-in (no lmms-eval needed): lists the models tspo registers with lmms-eval
(through the `lmms_eval.models` entry point; LMMS_EVAL_PLUGINS=tspo.plugins.lmms_eval for lmms-eval
< 0.7) and prints the command to run:
    python examples/plugin_lmms_eval.py
Real run (needs `pip install 'tspo[lmms]'` and the model weights):
    python -m lmms_eval --model tspo_video \
        --model_args base_model=llava_vid,pretrained=lmms-lab/LLaVA-Video-7B-Qwen2,max_frames_num=16,selector=org/tspo-selector,num_frames=16 \
        --tasks videomme --batch_size 1 --output_path ./logs
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-model", default="llava_vid")
    p.add_argument("--selector", default="path/to/selector")
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument("--tasks", default="videomme")
    args = p.parse_args()
    plugin = "tspo.plugins.lmms_eval"
    models = importlib.import_module(f"{plugin}.models")
    for name, cls in models.AVAILABLE_MODELS.items():
        print(f"lmms-eval will load --model {name} from {plugin}.models.{name}.{cls}")
    if importlib.util.find_spec("lmms_eval") is None:
        print("lmms-eval is not installed here (pip install 'tspo[lmms]'); the command to run it:")
    model_args = f"base_model={args.base_model},selector={args.selector},num_frames={args.num_frames},max_frames_num={args.num_frames}"
    print(
        "python -m lmms_eval --model tspo_video "
        f"--model_args {model_args},pretrained=<base model weights> --tasks {args.tasks} --batch_size 1"
    )


if __name__ == "__main__":
    main()
