"""Hub: push (safetensors + config + card) and load "org/name" through huggingface_hub, all offline:
a fake HfApi writes what it is given into a fake local HF cache, which from_pretrained then reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants

from tspo.agents import TemporalAgent
from tspo.selection.hub import HubError, model_card, push_to_hub, resolve_pretrained
from tspo.selection.selector import TSPOSelector

EVAL = {"methods": {"tspo": {"accuracy": 0.8125, "target_fraction": 0.61, "n": 16},
                    "uniform": {"accuracy": 0.5, "target_fraction": 0.12, "n": 16}}}  # fmt: skip


def _cache_snapshot(cache: Path, repo_id: str, files: dict[str, Path], commit: str = "0" * 40) -> Path:
    """Lay files out as huggingface_hub's cache does: models--org--name/{refs/main, snapshots/<sha>/}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        shutil.copy(src, snapshot / name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


class FakeHfApi:
    """Records calls; 'uploads' into the fake cache so a later offline load finds the repo."""

    calls: list = []
    cache: Path | None = None

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, private=None, exist_ok=False):
        FakeHfApi.calls.append(("create_repo", repo_id, private, exist_ok))

    def upload_folder(self, folder_path, repo_id, allow_patterns=None, **kwargs):
        files = {p.name: p for p in Path(folder_path).iterdir()}
        FakeHfApi.calls.append(("upload_folder", repo_id, sorted(files), kwargs.get("commit_message")))
        _cache_snapshot(FakeHfApi.cache, repo_id, files, commit="1" * 40)
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/{'1' * 40}"})()


@pytest.fixture()
def hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def _selector(seed: int = 0) -> TSPOSelector:
    agent = TemporalAgent(dim=64, window=12, heads=8)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in agent.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return TSPOSelector(encoder="tiny-random", agent=agent, cache=False, num_frames=8)


def test_push_then_load_by_hub_id_offline(hf_cache, monkeypatch):
    FakeHfApi.calls, FakeHfApi.cache = [], hf_cache
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    selector = _selector()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    url = selector.push_to_hub("acme/tspo-tiny", training_data="synthetic needles (tspo synth)", metrics=EVAL)
    assert url.endswith("/commit/" + "1" * 40)
    assert FakeHfApi.calls[0] == ("create_repo", "acme/tspo-tiny", None, True)
    assert FakeHfApi.calls[1][2] == ["README.md", "config.json", "model.safetensors"]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = TSPOSelector.from_pretrained("acme/tspo-tiny", cache=False)
    features, text = torch.randn(20, 64), torch.randn(64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.agent(features, text), selector.agent(features, text))
    assert loaded.num_frames == 8 and loaded.encoder.spec == selector.encoder.spec
    card = (resolve_pretrained("acme/tspo-tiny") / "README.md").read_text()
    assert "synthetic needles (tspo synth)" in card and "| tspo | 0.8125 |" in card


def test_offline_missing_selector_says_how_to_get_it(hf_cache):
    with pytest.raises(HubError, match=r"HF_HUB_OFFLINE=1 forbids downloading.*hf download acme/absent"):
        resolve_pretrained("acme/absent")
    with pytest.raises(HubError, match="not in the local Hugging Face cache"):
        TSPOSelector.from_pretrained("acme/absent", cache=False)


def test_cached_repo_without_weights_is_rejected(hf_cache, tmp_path):
    config = tmp_path / "config.json"
    config.write_text("{}")
    _cache_snapshot(hf_cache, "acme/not-a-selector", {"config.json": config})
    with pytest.raises(HubError, match=r"has no \['model.safetensors'\]"):
        resolve_pretrained("acme/not-a-selector")


def test_online_resolution_downloads_only_selector_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    seen = {}

    def fake_snapshot_download(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        return str(_selector().save_pretrained(tmp_path / "snap"))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    folder = resolve_pretrained("acme/tspo", revision="v1")
    assert folder == tmp_path / "snap"
    assert seen["repo_id"] == "acme/tspo" and seen["revision"] == "v1" and seen["local_files_only"] is False
    assert set(seen["allow_patterns"]) == {"config.json", "model.safetensors", "README.md"}


def test_local_directory_resolves_as_is_and_bad_ids_fail(tmp_path, monkeypatch):
    assert resolve_pretrained(tmp_path) == tmp_path
    with pytest.raises(HubError, match="org/name"):
        resolve_pretrained("not a/valid/id")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE=1 is set"):
        push_to_hub(_selector(), "acme/x")


def test_model_card_names_encoder_k_data_and_metrics():
    config = {"encoder": "ViT-L-14:openai", "num_frames": 64, "fps": 1.0, "max_candidates": 128,
              "agent": {"dim": 768, "window": 12, "heads": 8}, "training_data": "LLaVA-Video-178K subset"}  # fmt: skip
    card = model_card(config, "acme/tspo-0.4b", metrics=EVAL)
    assert card.startswith("---\nlibrary_name: tspo")
    for text in ("`ViT-L-14:openai`", "| frames selected (k) | 64 |", "at most 128 candidates",
                 "LLaVA-Video-178K subset", "| method | accuracy | n | target_fraction |",
                 "| uniform | 0.5 | 16 | 0.12 |", 'TSPOSelector.from_pretrained("acme/tspo-0.4b")'):  # fmt: skip
        assert text in card
    bare = model_card({"encoder": "tiny-random", "agent": {}}, metrics={"accuracy": 0.75})
    assert "| training data | not recorded |" in bare and "| accuracy | 0.75 |" in bare
    assert "No metrics recorded." in model_card({"encoder": "x"})
