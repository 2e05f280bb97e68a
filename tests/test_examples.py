"""Smoke test: every ``examples/plugin_*.py`` runs offline (HF_HUB_OFFLINE=1) on its defaults and exits 0.

The scripts start together (each is mostly imports) so the whole file stays within ~30 s on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# script -> (arguments, lines its output must hold)
RUNS = {
    "plugin_generic.py": (["--num-frames", "4"], ["selected 4 of 12 candidates", "image-list prompt (4 images)",
                                                  "OpenAI message parts:"]),
    "plugin_llava.py": (["--num-frames", "4"], ["selected 4 of 12 candidates", "pixel_values_videos: (1, 4,",
                                                "4 frames are sampled", "answer:"]),
    "plugin_qwen.py": (["--num-frames", "4"], ["selected 4 of 12 candidates", "video grid (t, h, w): [[2,",
                                               "answer:"]),
    "plugin_lmms_eval.py": (["--num-frames", "8"], ["--model tspo_video", "num_frames=8,max_frames_num=8"]),
}


def test_every_plugin_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("plugin_*.py")) == sorted(RUNS)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TSPO_CACHE": str(tmp_path_factory.mktemp("cache")), "PYTHONWARNINGS": "ignore"}
    procs = {name: subprocess.Popen([sys.executable, str(EXAMPLES / name), *args], cwd=tmp_path_factory.mktemp("cwd"),
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, (args, _) in RUNS.items()}
    out = {}
    for name, proc in procs.items():
        try:
            text, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
        out[name] = (proc.returncode, text)
    return out


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs_offline(finished, name):
    code, text = finished[name]
    assert code == 0, f"{name} exited {code}:\n{text[-3000:]}"
    for needle in RUNS[name][1]:
        assert needle in text, f"{name} printed no {needle!r}:\n{text[-3000:]}"
