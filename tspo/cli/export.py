"""``tspo export``: export a trained agent to TorchScript or ONNX (the command lives in :mod:`tspo.selection.export`, with its job)."""

from tspo.selection.export import main

__all__ = ["main"]
