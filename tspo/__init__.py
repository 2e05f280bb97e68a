"""tspo: a learnable frame sampler for video LLMs (Temporal Sampling Policy Optimization).

The public names are resolved lazily so that ``import tspo.rewards`` (or the CLI's ``--help``)
does not pay for torch/open_clip start-up it does not need.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["Selection", "TSPOSelector", "select_frames", "__version__"]

_LAZY = {"Selection": "tspo.selector", "TSPOSelector": "tspo.selector", "select_frames": "tspo.selector"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tspo' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names are not in globals() until first use; list them, not this module's helpers.
    return sorted(__all__)
