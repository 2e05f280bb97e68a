"""tspo: a learnable frame sampler for video LLMs (Temporal Sampling Policy Optimization).

The public names are resolved lazily so that ``import tspo.rewards`` (or the CLI's ``--help``)
does not pay for torch/open_clip start-up it does not need.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from typing import Any

__version__ = "0.1.0"
__all__ = ["Selection", "TSPOSelector", "select_frames", "__version__"]

_LAZY = {"Selection": "tspo.selection.selector", "TSPOSelector": "tspo.selection.selector", "select_frames": "tspo.selection.selector"}


# Modules that moved into folders (0.2): their old dotted paths import the new modules.
_MOVED = {
    "tspo.agents.baselines": "tspo.agents.rules",
    "tspo.rewards.spans": "tspo.spans",
    "tspo.data_synth.manifest": "tspo.manifest",
    "tspo.encoders": "tspo.features.encoders",
    "tspo.encoder_cache": "tspo.features.encoder_cache",
    "tspo.cache": "tspo.features.cache",
    "tspo.selector": "tspo.selection.selector",
    "tspo.hub": "tspo.selection.hub",
    "tspo.zoom": "tspo.selection.zoom",
    "tspo.zoom_config": "tspo.selection.zoom_config",
    "tspo.reflect": "tspo.evaluation.reflect",
    "tspo.export": "tspo.selection.export",
    "tspo.convert": "tspo.selection.convert",
    "tspo.grpo": "tspo.objectives.grpo",
    "tspo.zoom_grpo": "tspo.objectives.zoom_credit",
    "tspo.preference": "tspo.objectives.preference",
    "tspo.judge": "tspo.evaluation.judge",
    "tspo.evaluate": "tspo.evaluation.evaluate",
    "tspo.training.heldout": "tspo.evaluation.heldout",
    "tspo.kind_report": "tspo.evaluation.kind_report",
    "tspo.readers": "tspo.evaluation.readers",
    "tspo.synth_encoder": "tspo.data_synth.encoder_training",
    "tspo.cli_select": "tspo.cli.select",
    "tspo.cli_plot": "tspo.cli.plot",
    "tspo.training.cli": "tspo.cli.train",
    "tspo.data_synth.cli": "tspo.cli.synth",
    "tspo.demo": "tspo.cli.demo",
    "tspo.cli_features": "tspo.cli.features",
    "tspo.answer_log": "tspo.evaluation.answer_log",
    "tspo.clips": "tspo.selection.clips",
    "tspo.training.rollout": "tspo.training.grpo_step",   # split: rewards -> tspo.objectives.grpo
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tspo' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names are not in globals() until first use; list them, not this module's helpers.
    return sorted(__all__)


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old flat module path (``tspo.selector``) to its module in the new layout
    (``tspo.selection.selector``): the same module object, so patches and isinstance checks agree."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _MOVED:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(_MOVED[spec.name])

    def exec_module(self, module):
        pass


sys.meta_path.append(_MovedModules())
