"""How lmms-eval finds ``tspo_video``, without importing torch or lmms-eval to list it.

- lmms-eval >= 0.7: the ``lmms_eval.models`` entry point (setup.cfg) calls :func:`manifests`;
- older versions and ``LMMS_EVAL_PLUGINS=tspo.plugins.lmms_eval``: ``AVAILABLE_MODELS``
  (``{model_name: ClassName}``, loaded from ``tspo.plugins.lmms_eval.models.<model_name>``).
"""

from __future__ import annotations

AVAILABLE_MODELS = {"tspo_video": "TSPOVideo"}


def manifests() -> list:
    """lmms-eval's model manifests for this package (one per name of ``AVAILABLE_MODELS``)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [
        ModelManifest(model_id=name, simple_class_path=f"{__name__}.{name}.{cls}")
        for name, cls in AVAILABLE_MODELS.items()
    ]
