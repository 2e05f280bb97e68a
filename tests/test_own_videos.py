"""Training and evaluating on your own clips (issue 21): no silent maximum reward without spans, one k
rule for short clips, oracle options that belong to another oracle refused, the batch option named."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import write_video
from training_helpers import MetricRecorder, trainer

from tspo.features.dataset import DataConfigError
from tspo.training import TSPODataModule, TSPOModule
from tspo.training.module import TrainingConfigError


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    """Three real-looking clips of different lengths (6, 10, 14 s) and questions without any spans."""
    root = tmp_path_factory.mktemp("own")
    lines = []
    for i, seconds in enumerate((6, 10, 14)):
        write_video(root / "clips" / f"clip{i}.mp4", seconds=seconds, fps=4)
        lines.append({"id": f"clip{i}", "video": f"clips/clip{i}.mp4", "question": "What colour is the bar?",
                      "options": ["red", "green", "blue", "white"], "answer": "B", "kind": "general",
                      "duration_s": float(seconds)})
    path = root / "own.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _dm(own: Path, tmp_path: Path, **kw) -> TSPODataModule:
    kw.setdefault("val_batch_size", 1)
    return TSPODataModule(train_manifest=str(own), val_manifest=str(own), encoder="tiny-random", max_candidates=None,
                          feature_cache=str(tmp_path / "features"), progress=False, **kw)


def test_simulated_oracle_refuses_samples_without_spans(own, tmp_path):
    """Item 1: the simulated oracle would answer every span-less question right (reward 2.0 every step)."""
    model = TSPOModule(encoder="tiny-random", num_frames=4, group_size=4, oracle="simulated")
    with pytest.raises(TrainingConfigError, match=r"cannot judge them.*model\.oracle to clip"):
        trainer(2).fit(model, _dm(own, tmp_path))
    assert model.batches_seen == 0


def test_clip_oracle_trains_on_r_a_alone_and_clips_k_once(own, tmp_path, caplog):
    """Items 1 and 6: span-less samples train on R_A (said once); k = 8 > the 6 s clip's 6 candidates is
    clipped by the one rule tspo select uses (said once), not an error."""
    recorder = MetricRecorder()
    model = TSPOModule(encoder="tiny-random", num_frames=8, group_size=4, oracle="clip", frame_size=32)
    with caplog.at_level(logging.WARNING, logger="tspo.training.module"):
        trainer(4, callbacks=[recorder], limit_val_batches=3).fit(model, _dm(own, tmp_path))
    assert model.batches_seen == 4
    spans = [r.getMessage() for r in caplog.records if "no target spans" in r.getMessage()]
    short = [r.getMessage() for r in caplog.records if "fewer candidates" in r.getMessage()]
    assert len(spans) == 1 and "3 of 3 training samples" in spans[0] and "R_A alone" in spans[0]
    assert len(short) == 1 and "selecting all 6" in short[0]
    assert all(1.0 <= row["train/reward"] <= 2.0 for row in recorder.rows)
    assert "train/R_T" not in recorder.rows[-1]


def test_options_of_another_oracle_are_refused_up_front():
    """Item 6: the simulated oracle's options left in a config must not reach the clip oracle (was a TypeError
    at the first step)."""
    with pytest.raises(TrainingConfigError, match=r"'clip' does not take guess, min_needle_picks.*model\.oracle_args"):
        TSPOModule(encoder="tiny-random", oracle="clip", oracle_args={"min_needle_picks": 1, "guess": "random"})
    TSPOModule(encoder="tiny-random", oracle="clip", oracle_args={"logit_scale": 50.0})    # its own options pass


def test_unequal_clip_lengths_name_the_batch_option_that_causes_them(own, tmp_path):
    """Item 6: clips of different lengths with val_batch_size > 1 name data.val_batch_size, not data.batch_size."""
    dm = _dm(own, tmp_path, val_batch_size=32)
    dm.setup("fit")
    with pytest.raises(DataConfigError, match=r"data\.val_batch_size=32 .*set data\.val_batch_size=1") as err:
        next(iter(dm.val_dataloader()))
    assert "data.batch_size" not in str(err.value)
    with pytest.raises(DataConfigError, match=r"data\.batch_size=2 .*set data\.batch_size=1"):
        _dm(own, tmp_path, batch_size=2).setup("fit")


def test_readme_own_videos_worked_example_runs(tmp_path):
    """Item 6: the README's "Train on your own videos" example runs as written (offline, small) and ends in
    a trained selector and an eval table with no traceback."""
    import os
    import re
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    section = (repo / "README.md").read_text().split("## Train on your own videos", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0]
    (tmp_path / "examples").symlink_to(repo / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1", "TSPO_CACHE": str(tmp_path / "cache"), "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    assert "train on R_A alone" in run.stderr and "all samples (3)" in run.stdout
    result = json.loads((tmp_path / "runs/own/eval.json").read_text())
    assert result["methods"]["tspo"]["n"] == 3 and result["config"]["oracle"] == "clip"
    assert (tmp_path / "runs/own/lightning_logs/version_0/selector/config.json").is_file()
