"""`tspo select` end to end on a rendered video, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tspo.cli import main as tspo_main


def test_select_json(short_video, capsys):
    code = tspo_main(["select", str(short_video), "What colour is it?", "-k", "4", "--encoder", "tiny-random", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"indices", "timestamps", "method", "num_candidates"}
    assert len(out["indices"]) == 4 and out["num_candidates"] == 20 and out["method"] == "tspo"
    assert out["indices"] == sorted(out["indices"])


def test_select_saves_frames_and_text_output(short_video, tmp_path, capsys):
    code = tspo_main(["select", str(short_video), "q?", "-k", "3", "--encoder", "tiny-random", "--method", "uniform",
                      "--save-frames", str(tmp_path / "frames")])
    assert code == 0
    assert "uniform: 3 of 20 candidates" in capsys.readouterr().out
    files = sorted((tmp_path / "frames").glob("*.jpg"))
    assert len(files) == 3


@pytest.mark.parametrize(
    "args,match",
    [
        (["MISSING.mp4", "q?"], "does not exist"),
        (["{video}", "  "], "question must be a non-empty string"),
        (["{video}", "q?", "-k", "0"], "num-frames must be a positive int"),
        (["{video}", "q?", "--fps", "0"], "--fps must be a positive number"),
        (["{video}", "q?", "--selector", "{tmp}"], "no config.json"),
    ],
)
def test_select_errors_are_clear(short_video, tmp_path, capsys, args, match):
    args = [a.format(video=short_video, tmp=tmp_path) for a in args]
    code = tspo_main(["select", *args, "--encoder", "tiny-random"])
    assert code == 2
    assert match in capsys.readouterr().err


def test_module_entry_point_and_help():
    out = subprocess.run([sys.executable, "-m", "tspo", "--help"], capture_output=True, text=True, check=True)
    assert "select" in out.stdout and "train" in out.stdout
    assert tspo_main(["nope"]) == 2
