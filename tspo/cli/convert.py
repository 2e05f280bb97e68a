"""``tspo convert``: turn the official TSPO-0.4B release into a selector directory (the command lives in :mod:`tspo.selection.convert`, with its job)."""

from tspo.selection.convert import main

__all__ = ["main"]
