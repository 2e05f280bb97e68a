"""lmms-eval tasks shipped with tspo (lmms-eval requires a ``<plugin>.tasks`` package).

``tspo_manifest_mcq``: the multiple-choice questions of a tspo manifest (``tspo synth`` output, or
your own ``manifest.jsonl`` with ``video``, ``question``, ``options``, ``answer``), read from
``./manifest.jsonl`` of the folder lmms-eval runs in. ``python -m tspo.plugins.lmms_eval.tasks``
prints this folder, for lmms-eval's ``--include_path``.
"""

from __future__ import annotations

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
