"""Warnings on a command line: one line ``tspo CMD: warning: MESSAGE`` instead of Python's
``/path/to/file.py:201: UserWarning: ...`` plus the source line (library callers keep real warnings)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def plain_warnings(prog: str) -> Iterator[None]:
    """Inside: each warning printed as one line prefixed with ``prog`` (e.g. ``tspo select``)."""
    before = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *_, **__: f"{prog}: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = before
