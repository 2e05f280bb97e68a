"""Read by lmms-eval's ``LMMS_EVAL_PLUGINS`` hook: ``{model_name: ClassName}``, loaded from
``tspo.plugins.lmms_eval.models.<model_name>.<ClassName>``. Kept import-free so that listing the
models does not import torch or lmms-eval."""

AVAILABLE_MODELS = {"tspo_video": "TSPOVideo"}
