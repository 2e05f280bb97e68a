"""``tspo eval``: compare selection methods on a manifest with an oracle (the command lives in :mod:`tspo.evaluation.evaluate`, with its job)."""

from tspo.evaluation.evaluate import main

__all__ = ["main"]
