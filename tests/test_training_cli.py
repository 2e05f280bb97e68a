"""`tspo train fit --config examples/configs/synthetic_needle.yaml`: offline, end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from training_helpers import small_synth

from tspo import TSPOSelector
from tspo.cli.train import main
from tspo.selection.hub import model_card

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "synthetic_needle.yaml"


def test_config_trains_offline_checkpoints_and_exports_a_selector(tmp_path_factory, tmp_path):
    root = tmp_path_factory.getbasetemp() / "training_data"
    synth = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(small_synth(root)).items()}
    override = tmp_path / "small.yaml"
    override.write_text(yaml.safe_dump({
        "trainer": {"max_steps": 12, "val_check_interval": 6, "default_root_dir": str(tmp_path / "run"),
                    "enable_progress_bar": False,
                    "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                   "init_args": {"dirpath": str(tmp_path / "ckpt"), "save_last": True,
                                                 "every_n_train_steps": 6}}]},
        "data": {"synth": synth, "feature_cache": str(root / "features"), "progress": False},
        "export": {"dirpath": str(tmp_path / "selector")},
    }))
    assert main(["fit", "--config", str(CONFIG), "--config", str(override)]) == 0

    sel = TSPOSelector.from_pretrained(tmp_path / "selector", cache=False)
    assert sel.encoder.spec == "tiny-random" and sel.num_frames == 16 and sel.max_candidates == 128
    assert sel.config["trained_with"]["steps"] == 12
    # what the run trained and was checked on, and the final held-out check, go into the model card
    train_m, val_m = (str(p.resolve()) for p in small_synth(root).paths())
    assert sel.config["trained_with"]["data"]["train_manifest"] == train_m
    assert sel.config["trained_with"]["data"]["synth"]["num_train"] == 64
    metrics = sel.config["metrics"]
    assert metrics["training steps"] == 12 and metrics["held-out checked at step"] == 12
    assert metrics["held-out samples"] == 48
    assert 0.0 <= metrics["held-out picks in target"] <= 1.0 and 0.0 <= metrics["held-out accuracy (oracle)"] <= 1.0
    card = model_card(sel.config, "org/needle-selector")
    assert f"train: {train_m}" in card and f"held-out: {val_m}" in card and "synthetic needles" in card
    assert f"| held-out picks in target | {metrics['held-out picks in target']:.4g} |" in card
    assert f"| held-out accuracy (oracle) | {metrics['held-out accuracy (oracle)']:.4g} |" in card
    assert "| training steps | 12 |" in card and "not recorded" not in card and "No metrics" not in card
    last = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 12
    for k, v in sel.agent.state_dict().items():
        assert torch.equal(v, last["state_dict"][f"agent.{k}"]), k
    saved_cfg = yaml.safe_load(next((tmp_path / "run").rglob("config.yaml")).read_text())
    assert saved_cfg["data"]["encoder"] == "tiny-random" and saved_cfg["model"]["group_size"] == 8


def test_cli_reports_a_missing_manifest(tmp_path):
    with pytest.raises(ValueError, match="train_manifest"):
        main(["fit", "--config", str(CONFIG), "--data.synth", "null",
              "--data.train_manifest", str(tmp_path / "missing.jsonl"), "--trainer.max_steps", "1",
              "--trainer.default_root_dir", str(tmp_path / "run"), "--export.dirpath", str(tmp_path / "sel")])


@pytest.mark.parametrize("name", ["synthetic_needle.yaml", "llava_video_7b.yaml", "qwen25vl_7b.yaml", "zoom_needle.yaml"])
def test_example_configs_parse(name, capsys):
    """Every shipped config is valid for `tspo train` (parsed, not run: the 7B ones need a GPU)."""
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(CONFIG.parent / name), "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["group_size"] == 8 and printed["model"]["num_frames"] == 16
    assert printed["model"]["lr"] == 5e-4 and printed["model"]["tau_start"] == 0.025


def test_yaml_oracle_may_be_a_class_path_mapping(tmp_path):
    """`model.oracle: {class_path, init_args}` (LightningCLI's shape) goes through build_oracle, built lazily."""
    from tspo.cli.train import TSPOCLI
    from tspo.rewards import SimulatedOracle
    from tspo.training.datamodule import TSPODataModule
    from tspo.training.module import TSPOModule

    cfg = tmp_path / "oracle.yaml"
    cfg.write_text(yaml.safe_dump({
        "model": {"oracle": {"class_path": "tspo.rewards.SimulatedOracle", "init_args": {"guess": "wrong"}},
                  "oracle_args": {"min_needle_picks": 2}},
        "data": {"train_manifest": str(tmp_path / "unused.jsonl")}}))
    cli = TSPOCLI(TSPOModule, TSPODataModule, args=["--config", str(cfg)], run=False)
    oracle = cli.model.oracle.oracle                                       # behind the OracleCache
    assert isinstance(oracle, SimulatedOracle) and oracle.guess == "wrong" and oracle.min_needle_picks == 2
    with pytest.raises(ValueError, match="class_path"):
        _ = TSPOModule(oracle={"class_path": "tspo.rewards.SimulatedOracle", "args": {}}).oracle


def test_run_dir_holds_everything_the_run_writes(tmp_path, monkeypatch):
    """--run_dir D: data, feature cache, logs, checkpoints and the selector all land in D; nothing in
    the working directory; a second run gets its own selector instead of overwriting the first."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    synth = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(small_synth(tmp_path)).items()}
    synth.pop("out_dir")
    override = tmp_path / "small.yaml"
    override.write_text(yaml.safe_dump({
        "trainer": {"max_steps": 2, "val_check_interval": 2, "enable_progress_bar": False},
        "data": {"synth": {**synth, "num_train": 8, "num_val": 4}, "progress": False},
    }))
    run = tmp_path / "D"
    for _ in range(2):
        assert main(["fit", "--config", str(CONFIG), "--config", str(override), "--run_dir", str(run)]) == 0
    assert list(work.iterdir()) == []
    assert (run / "data" / "train" / "manifest.jsonl").is_file() and any((run / "feature_cache").iterdir())
    selectors = sorted(run.rglob("selector/config.json"))
    assert [p.parent.parent.name for p in selectors] == ["version_0", "version_1"]
    assert sorted(p.name for p in run.rglob("*.ckpt"))  # checkpoints inside the run folder too
    sel = TSPOSelector.from_pretrained(selectors[0].parent, cache=False)
    assert sel.config["trained_with"]["data"]["train_manifest"].startswith(str(run))


def test_console_is_quiet_and_counts_steps(tmp_path):
    """What `tspo train fit` prints: a `step N/M` bar with smoothed metrics, no v_num, no Lightning
    notes (GPU/TPU availability, tips, deprecations)."""
    import subprocess
    import sys

    synth = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(small_synth(tmp_path)).items()}
    override = tmp_path / "small.yaml"
    override.write_text(yaml.safe_dump({"trainer": {"max_steps": 3, "val_check_interval": 100},
                                        "data": {"synth": {**synth, "num_train": 8, "num_val": 4}, "progress": False}}))
    proc = subprocess.run([sys.executable, "-m", "tspo", "train", "fit", "--config", str(CONFIG), "--config",
                           str(override), "--run_dir", str(tmp_path / "run")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = (proc.stdout + proc.stderr).replace("\r", "\n")
    assert "step 3/3" in console and "reward=" in console
    for noise in ("v_num", "GPU available", "TPU available", "Epoch 0/", "deprecated", "tensorboardX", "Seed set"):
        assert noise not in console, noise
    selector = next((tmp_path / "run").rglob("selector/config.json")).parent
    held_out = TSPOSelector.from_pretrained(selector, cache=False).config["metrics"]["held-out check"]
    assert held_out == ("not run: trainer.val_check_interval=100 batches is more than the run's "
                        "trainer.max_steps=3; lower it")
