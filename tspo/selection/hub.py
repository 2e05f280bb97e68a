"""Selectors on the Hugging Face Hub: ``TSPOSelector.push_to_hub`` / ``from_pretrained("org/name")``.

A hub repo holds what :meth:`TSPOSelector.save_pretrained` writes (``model.safetensors`` +
``config.json``) plus a generated ``README.md`` model card naming the encoder, k, the training
data and the metrics. Downloads go through ``huggingface_hub.snapshot_download`` into the usual HF
cache; with ``HF_HUB_OFFLINE=1`` only that cache is read, and a missing selector fails with an
error saying how to get it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from tspo.errors import TSPOError
from tspo.network import is_offline

SELECTOR_FILES = ("config.json", "model.safetensors")
CARD_NAME = "README.md"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class HubError(TSPOError, ValueError):
    """A hub id that cannot be resolved, pushed, or that holds no tspo selector."""


def _check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id):
        raise HubError(f"hub id must look like 'org/name', got {repo_id!r}")
    return repo_id


def resolve_pretrained(
    name_or_path: str | os.PathLike, revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """A local selector directory as is; a hub id ``org/name`` -> its snapshot folder in the HF cache.

    Downloads only ``config.json``, ``model.safetensors`` and the model card. Offline
    (``HF_HUB_OFFLINE=1``) it reads the cache only and raises :class:`HubError` naming the fix
    when the selector is not there.
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path
    repo_id = _check_repo_id(str(name_or_path))
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError as err:
        raise ImportError(
            f"loading {repo_id!r} from the Hugging Face Hub needs huggingface_hub: pip install 'tspo[hf]'"
        ) from err
    offline = is_offline()
    where = f"cache {cache_dir}" if cache_dir else "the local Hugging Face cache ($HF_HOME/hub)"
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=offline,
            allow_patterns=[*SELECTOR_FILES, CARD_NAME],
            library_name="tspo",
        )
    except LocalEntryNotFoundError as err:
        if offline:
            raise HubError(
                f"selector {repo_id!r} is not in {where} and HF_HUB_OFFLINE=1 forbids downloading it: "
                f"download it once online (unset HF_HUB_OFFLINE, or `hf download {repo_id}`), "
                "or pass a local selector directory"
            ) from err
        raise HubError(
            f"could not download selector {repo_id!r} (no connection?) and it is not in {where}: {err}"
        ) from err
    except RepositoryNotFoundError as err:
        raise HubError(
            f"hub repo {repo_id!r} not found (or private: log in with `hf auth login`); "
            "check the id or pass a local selector directory"
        ) from err
    except HfHubHTTPError as err:
        raise HubError(f"could not fetch selector {repo_id!r} from the hub: {err}") from err
    folder = Path(folder)
    missing = [name for name in SELECTOR_FILES if not (folder / name).is_file()]
    if missing:
        raise HubError(
            f"hub repo {repo_id!r} (snapshot {folder}) has no {missing}; it does not hold a tspo selector "
            "written by TSPOSelector.push_to_hub / save_pretrained"
        )
    return folder


def _metrics_table(metrics: dict[str, Any]) -> list[str]:
    """Markdown rows from ``{"methods": {name: {accuracy, target_fraction, ...}}}`` (``tspo eval``
    output) or a flat ``{name: value}`` dict."""
    methods = metrics.get("methods") if isinstance(metrics.get("methods"), dict) else None
    if methods is None:
        rows = ["| metric | value |", "| --- | --- |"]
        return rows + [f"| {name} | {_fmt(value)} |" for name, value in metrics.items()]
    columns = sorted({col for values in methods.values() if isinstance(values, dict) for col in values})
    rows = ["| method | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for name, values in methods.items():
        rows.append(f"| {name} | " + " | ".join(_fmt(values.get(col)) for col in columns) + " |")
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _method_of(config: dict[str, Any]) -> str:
    """The method a selector with this config uses when a call names none (``save_pretrained`` always
    stores it; an older config without it means its agent family's, ``tspo.agents.default_method``)."""
    method = config.get("method")
    return f"`{method}`" if method else "its agent family's own (`tspo`; `tspo+shot` for the filter family)"


def model_card(
    config: dict[str, Any],
    repo_id: str | None = None,
    training_data: str | list[str] | None = None,
    metrics: dict[str, Any] | None = None,
) -> str:
    """README.md for a selector: encoder, k, candidate sampling, agent shape, training data, metrics.

    ``training_data`` / ``metrics`` default to the config's ``training_data`` / ``metrics`` entries
    (``tspo train`` may store them there); absent ones are stated as not recorded.
    """
    training_data = training_data if training_data is not None else config.get("training_data")
    metrics = metrics if metrics is not None else config.get("metrics")
    if isinstance(training_data, (list, tuple)):
        training_data = ", ".join(str(t) for t in training_data)
    agent = config.get("agent", {})
    name = repo_id or "path/to/selector"
    lines = [
        "---",
        "library_name: tspo",
        "license: apache-2.0",
        "tags:",
        "- tspo",
        "- video",
        "- frame-selection",
        "- video-llm",
        "---",
        "",
        f"# {name.split('/')[-1]}: a TSPO frame selector",
        "",
        "A temporal agent trained with Temporal Sampling Policy Optimization (TSPO). It scores every "
        "candidate frame of a video against a question and keeps the k frames that matter, for any "
        "downstream video LLM (Qwen2-VL / Qwen2.5-VL, LLaVA-OneVision / LLaVA-Video, API models).",
        "",
        "| | |",
        "| --- | --- |",
        f"| encoder | `{config.get('encoder', 'unknown')}` |",
        f"| frames selected (k) | {config.get('num_frames', '–')} |",
        f"| candidate rate | {config.get('fps', '–')} fps, at most {config.get('max_candidates') or 'all'} candidates |",
        f"| agent | {agent.get('family', 'paper')} family, dim {agent.get('dim', '–')}, window {agent.get('window', '–')}, "
        f"heads {agent.get('heads', '–')} |",
        f"| selection method | {_method_of(config)} (when a call names none; `method=` overrides) |",
        f"| training data | {training_data or 'not recorded'} |",
        "",
        "## Metrics",
        "",
        *(_metrics_table(metrics) if metrics else ["No metrics recorded."]),
        "",
        "## Use",
        "",
        "```python",
        "from tspo import TSPOSelector",
        f'selector = TSPOSelector.from_pretrained("{name}")',
        'sel = selector.select("video.mp4", "What does the woman pick up?", '
        f"num_frames={config.get('num_frames', 16)}, return_frames=True)",
        "sel.indices, sel.timestamps  # frames in time order, seconds",
        "```",
        "",
        "Adapters for Qwen2-VL / Qwen2.5-VL, LLaVA-OneVision / LLaVA-Video and OpenAI-compatible "
        "servers live in `tspo.plugins`; `tspo export` writes the agent as TorchScript or ONNX.",
        "",
    ]
    return "\n".join(lines)


def push_to_hub(
    selector: Any,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str = "Upload TSPO selector",
    training_data: str | list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    create_pr: bool = False,
) -> str:
    """Upload ``selector`` (safetensors weights, config.json, generated README.md) to ``repo_id``;
    returns the commit URL. Creates the repo if needed. Refuses when ``HF_HUB_OFFLINE`` is set."""
    _check_repo_id(repo_id)
    if is_offline():
        raise HubError(f"cannot push {repo_id!r}: HF_HUB_OFFLINE=1 is set; unset it to upload")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="tspo-push-") as tmp:
        folder = Path(selector.save_pretrained(tmp) or tmp)
        config = json.loads((folder / "config.json").read_text())
        card = model_card(config, repo_id, training_data=training_data, metrics=metrics)
        (folder / CARD_NAME).write_text(card)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            revision=revision,
            commit_message=commit_message,
            allow_patterns=[*SELECTOR_FILES, CARD_NAME],
            create_pr=create_pr,
        )
    return str(getattr(info, "commit_url", None) or info)


__all__ = ["HubError", "is_offline", "model_card", "push_to_hub", "resolve_pretrained"]
