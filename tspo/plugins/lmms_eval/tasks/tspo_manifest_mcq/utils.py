"""doc_to_* functions of the ``tspo_manifest_mcq`` lmms-eval task (one manifest line = one doc)."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

LETTERS = string.ascii_uppercase


def doc_to_visual(doc: dict) -> list[str]:
    """The sample's video file, resolved against the working directory (where manifest.jsonl is)."""
    video = doc["video"]
    if not isinstance(video, str):
        raise ValueError(
            f"sample {doc.get('id')!r} has a virtual video (a list of segments); this task needs a file: "
            "materialise it first (`tspo synth needle --materialize`)"
        )
    return [str(Path(video).expanduser().resolve())]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    """Question and lettered options, with the task's pre/post prompt."""
    kwargs = lmms_eval_specific_kwargs or {}
    options = "\n".join(f"({LETTERS[i]}) {opt}" for i, opt in enumerate(doc["options"]))
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}\n{options}{kwargs.get('post_prompt', '')}"


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """accuracy 1/0: the first option letter in the reply against the manifest's answer letter."""
    match = re.search(rf"\b([{LETTERS[: len(doc['options'])]}])\b", results[0].strip().upper())
    return {"accuracy": float(match is not None and match.group(1) == str(doc["answer"]).strip().upper())}
