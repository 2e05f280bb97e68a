"""Mistakes a person makes get one line they can act on: no usage dump, no traceback (issue 21, item 11)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import write_video

from tspo.cli.train import main as train

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"
NEEDLE = str(CONFIGS / "synthetic_needle.yaml")


def _train_error(capsys, *argv: str) -> str:
    assert train(["fit", "--config", NEEDLE, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "usage:" not in err, err
    assert err.startswith("tspo train: error: ")
    return err


def test_unknown_yaml_key_names_the_key_file_line_and_nearest_keys(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  lr: 0.001\n  num_frame: 4\n")
    err = _train_error(capsys, "--config", str(bad))
    assert f"unknown key 'model.num_frame' in {bad}, line 3" in err and "did you mean model.num_frames" in err


def test_bad_yaml_value_and_bad_yaml_syntax(tmp_path, capsys):
    bad = tmp_path / "value.yaml"
    bad.write_text("model:\n  num_frames: four\n")
    err = _train_error(capsys, "--config", str(bad))
    assert f"bad value for 'model.num_frames' in {bad}, line 2" in err
    bad.write_text("model:\n  num_frames: -3\n")
    assert "model.num_frames must be a positive int" in _train_error(capsys, "--config", str(bad))
    bad.write_text("model:\n  num_frames: [4\n")
    err = _train_error(capsys, "--config", str(bad))
    assert f"{bad}, line 3, column 1: YAML syntax error" in err and "<unicode string>" not in err


def test_gpu_accelerator_without_a_gpu_is_one_line(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    err = _train_error(capsys, "--trainer.accelerator", "gpu", "--run_dir", str(tmp_path))
    assert "No supported gpu backend found" in err and "cpu" in err


def test_dpo_without_its_answer_log_fails_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    err = _train_error(capsys, "--config", str(CONFIGS / "synthetic_needle_dpo.yaml"))
    assert time.perf_counter() - start < 20  # was 33 s of rendering, then a 60-line traceback
    assert "model.preference_log 'tspo_work/logs/uniform.jsonl' does not exist" in err and "--log-answers" in err
    assert not (tmp_path / "tspo_work").exists()  # nothing rendered as a side effect


@pytest.mark.parametrize("source", ["/typo", "../typo", "a b/c", "/typo/path"])
def test_convert_a_missing_path_is_not_a_hub_id(source, capsys, tmp_path):
    from tspo.selection.convert import main as convert

    assert convert([source, "--out", str(tmp_path / "sel")]) != 0
    err = capsys.readouterr().err
    assert "HFValidationError" not in err and "Traceback" not in err
    assert f"{source!r} is neither a file/folder here nor a hub id" in err


def _select(*argv: str) -> int:
    from tspo.cli.select import main

    return main(list(argv))


def test_save_frames_into_a_used_folder_is_refused(tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", seconds=6)
    used = tmp_path / "frames"
    used.mkdir()
    (used / "000_frame0000001_0000001.00s.jpg").write_bytes(b"earlier video")
    assert _select(str(video), "q", "--encoder", "tiny-random", "-k", "2", "--save-frames", str(used)) == 2
    assert "is not empty; give a new or empty folder" in capsys.readouterr().err


def test_plot_into_a_folder_that_cannot_exist_is_checked_before_the_work(tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", seconds=6)
    blocker = tmp_path / "plots"
    blocker.write_text("a file where the folder should be")
    assert _select(str(video), "q", "--encoder", "tiny-random", "--plot", str(blocker / "p.png")) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_k_above_the_candidates_is_one_clean_warning_line(tmp_path):
    import subprocess
    import sys

    video = write_video(tmp_path / "clip.mp4", seconds=6)
    proc = subprocess.run([sys.executable, "-m", "tspo", "select", str(video), "q", "--encoder", "tiny-random",
                           "--feature-cache", str(tmp_path / "c")], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    warn = [ln for ln in err if "candidates" in ln]
    assert len(warn) == 1 and warn[0].startswith("tspo select: warning: asked for 16 frames"), err
    assert not any("UserWarning" in ln or ".py:" in ln for ln in err), err


def test_lmms_eval_model_argument_typo_is_named():
    from tspo.plugins.lmms_eval.args import check_passed_on, misspelt_tspo_args

    assert misspelt_tspo_args({"num_frame": 4, "pretrained": "x", "max_frames_num": 4, "max_num_frames": 8,
                               "conv_template": "qwen", "selectors": "d", "clipdir": "c"}) == {
        "num_frame": "num_frames", "selectors": "selector", "clipdir": "clip_dir"}
    with pytest.raises(ValueError, match=r"'num_frame' \(did you mean num_frames\?\)"):
        check_passed_on({"num_frame": 4})
    check_passed_on({"pretrained": "lmms-lab/LLaVA-Video-7B-Qwen2", "max_frames_num": 16, "device_map": "auto"})
