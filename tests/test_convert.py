"""`tspo convert`: a checkpoint in the published TSPO layout -> a working selector directory."""

from __future__ import annotations

import torch
from test_agent import _published_state

from tspo.agents import TemporalAgent
from tspo.cli import main as tspo_main
from tspo.selection.selector import TSPOSelector, read_selector_config


def test_convert_release_folder_to_selector(tmp_path, capsys):
    torch.manual_seed(0)
    native = TemporalAgent(dim=64, heads=8)
    for p in native.parameters():
        torch.nn.init.normal_(p, std=0.05)
    release = tmp_path / "release"
    release.mkdir()
    (release / "config.json").write_text("{}")
    torch.save({"model.vision_tower.x": torch.zeros(2)}, release / "a_clip_only.bin")  # no selector in it
    torch.save(_published_state(native, "multiModal_align."), release / "tspo.bin")
    code = tspo_main(["convert", str(release), "--out", str(tmp_path / "sel"), "--encoder", "tiny-random"])
    assert code == 0 and f"wrote selector {tmp_path / 'sel'}" in capsys.readouterr().out
    config = read_selector_config(tmp_path / "sel")
    assert config["encoder"] == "tiny-random" and config["converted_from"].endswith(":tspo.bin")
    loaded = TSPOSelector.from_pretrained(tmp_path / "sel", cache=False)
    feats, text = torch.randn(20, 64), torch.randn(64)
    torch.testing.assert_close(loaded.agent(feats, text), native(feats, text))


def test_convert_offline_names_what_to_download(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert tspo_main(["convert", "--out", str(tmp_path / "sel")]) == 1
    err = capsys.readouterr().err
    assert "hzf666/TSPO-0.4B" in err and "hf download hzf666/TSPO-0.4B" in err and "Traceback" not in err
    assert tspo_main(["convert", str(tmp_path / "empty_dir_missing"), "--out", str(tmp_path / "x")]) == 1
