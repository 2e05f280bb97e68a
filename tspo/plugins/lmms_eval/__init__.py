"""lmms-eval plug-in: evaluate any lmms-eval video model with tspo's frame selection in front of it.

lmms-eval (>= 0.7) finds the model through the ``lmms_eval.models`` entry point (older versions:
``LMMS_EVAL_PLUGINS=tspo.plugins.lmms_eval``), so nothing is forked. The ``lmms`` extra carries the
lmms-eval range and the pins it needs (:mod:`tspo.plugins.lmms_eval.compat` checks them)::

    pip install 'tspo[lmms,hf]'
    python -m lmms_eval \\
        --model tspo_video \\
        --model_args base_model=llava_vid,selector=path/or/org-name,num_frames=16,pretrained=lmms-lab/LLaVA-Video-7B-Qwen2,max_frames_num=16 \\
        --tasks videomme --batch_size 1

``tspo_video`` picks ``num_frames`` frames per video with the selector, writes them (native
resolution, in time order) as a short clip, and hands that clip to the wrapped model in place of
the original video. Set the wrapped model's own frame count (``max_frames_num`` for llava_vid /
llava_onevision, ``max_num_frames`` for qwen2_vl, ...) to ``num_frames`` so its uniform sampler
takes every frame of the clip exactly once. The clip spaces the frames evenly, so their real times
are prefixed to the question by default (``timestamps_in_prompt=false`` turns that off). Every other
``model_args`` key goes to the wrapped model.
"""
