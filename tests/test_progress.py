"""Progress output (tspo.progress): redrawn bars on a terminal, a few plain lines in a file."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import write_video
from training_helpers import small_synth

from tspo.progress import HEARTBEAT_S, MIN_LINE_INTERVAL_S, LineProgress, progress_bar

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "synthetic_needle.yaml"


def _run(total: int, seconds_per_step: float) -> list[str]:
    clock = [0.0]
    buf = io.StringIO()
    bar = LineProgress(total=total, desc="step", file=buf, clock=lambda: clock[0])
    for _ in range(total):
        clock[0] += seconds_per_step
        bar.set_postfix(reward=1.5, refresh=False)
        bar.update(1)
    bar.close()
    text = buf.getvalue()
    assert "\r" not in text and text.endswith("\n")
    return text.splitlines()


def test_line_pace_a_fast_run_a_slow_run():
    # 3,000 steps in 60 s: one line per >= 10 s, not 3,000 redraws; the last line says where it ended
    lines = _run(3000, 0.02)
    assert 2 <= len(lines) <= 60 / MIN_LINE_INTERVAL_S + 2
    assert lines[0].startswith("step 0/3000 (0%)") and lines[-1].startswith("step 3000/3000 (100%)")
    assert "reward=1.5" in lines[-1]
    # 100 steps over an hour: a line a minute at least (the heartbeat), each 10 % among them
    lines = _run(100, 36.0)
    assert 3600 / (HEARTBEAT_S + 36) <= len(lines) <= 3600 / HEARTBEAT_S + 12  # steps come every 36 s
    assert all(any(ln.startswith(f"step {n}/100") for ln in lines) for n in range(0, 101, 10))
    # 10 steps of 10 minutes: one line per step (each is 10 %)
    assert len(_run(10, 600.0)) == 11


def test_short_work_with_a_delay_prints_nothing():
    buf = io.StringIO()
    for _ in progress_bar(range(50), desc="encode", file=buf, delay_s=60.0):
        pass
    assert buf.getvalue() == ""


def test_training_stdout_redirected_to_a_file_is_plain_lines(tmp_path):
    """`tspo train fit ... > log.txt`: no carriage-return redraws, a handful of lines, the last step."""
    synth = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(small_synth(tmp_path)).items()}
    override = tmp_path / "small.yaml"
    override.write_text(yaml.safe_dump({
        "trainer": {"max_steps": 40, "val_check_interval": 20, "callbacks": []},
        "data": {"synth": {**synth, "num_train": 8, "num_val": 4, "train_targets": 2, "val_targets": 2, "distractors": 2,
                           "target_seconds": [8, 12], "min_minutes": 0.75, "max_minutes": 1.0},
                 "val_batch_size": 1},
    }))  # fmt: skip
    log = tmp_path / "log.txt"
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "tspo", "train", "fit", "--config", str(CONFIG), "--config",
                               str(override), "--run_dir", str(tmp_path / "run")], stdout=out, stderr=out)  # fmt: skip
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "\r" not in text, text[:2000]
    step_lines = [ln for ln in text.splitlines() if ln.startswith("step ")]
    assert step_lines and step_lines[-1].startswith("step 40/40 (100%)") and "reward=" in step_lines[-1]
    assert len(step_lines) <= 8 and len(text) < 20_000, text


def test_a_long_encode_in_tspo_select_shows_progress(tmp_path, monkeypatch, capsys):
    import tspo.features.cache
    from tspo.cli.select import main

    monkeypatch.setattr(tspo.features.cache, "ENCODE_PROGRESS_DELAY_S", 0.0)  # this clip encodes in under the real delay
    video = write_video(tmp_path / "clip.mp4", seconds=30, fps=8)
    assert main([str(video), "what colour?", "-k", "4", "--encoder", "tiny-random", "--fps", "8",
                 "--max-candidates", "240", "--feature-cache", str(tmp_path / "cache")]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "encode candidates 0/240" in err and "encode candidates 240/240 (100%)" in err and "\r" not in err
