"""Every fenced code block of README.md is either run here, offline and small, or listed with the reason.

How it works (to add a README block, add one entry to ``BLOCKS``):

- A block is named by its first line (stripped). ``BLOCKS`` maps each name to
  ``("run", None)``: run it here; ``("skip", REASON)``: it needs real weights, a GPU, the network,
  or is a synopsis with placeholders (say which); ``("elsewhere", TEST)``: another test runs it.
  ``test_every_readme_block_is_registered`` fails when the README has a block that is not in
  ``BLOCKS`` (or ``BLOCKS`` names a block the README no longer has).
- Run blocks execute in a fresh folder that holds a link to the repo's ``examples/``, a small
  ``video.mp4`` / ``long.mp4`` and a tiny-random selector at ``runs/needle/selector`` and
  ``my_selector``; bash blocks run with ``bash -euo pipefail`` (``tspo`` from this virtualenv on
  PATH), python blocks with this interpreter; both offline (``HF_HUB_OFFLINE=1``).
- Sizes shrink by rewriting the block text (:func:`shrink`), never the README: every
  ``tspo train fit --config X.yaml`` gets ``--config SMALL`` right after ``X.yaml`` (2 steps, a
  few rendered needles; flags written later on the line still win), ``--limit N`` becomes
  ``--limit 8``, and the paper's encoder ``ViT-L-14:openai`` becomes ``tiny-random`` (no weights
  offline). So the commands as written, only smaller.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_video

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

BLOCKS: dict[str, tuple[str, str | None]] = {
    "make demo      # fresh virtualenv in .venv, install, then the offline end-to-end demo -> demo_out/":
        ("skip", "builds a virtualenv and runs the whole suite/demo: this is what CI runs (`make test`, .ci/run)"),
    "from tspo import select_frames, TSPOSelector": ("run", None),
    "# a filter-family selector (untrained here: it ranks exactly as the paper's agent until trained)": ("run", None),
    "tspo convert --out tspo-0.4b          # fetches hzf666/TSPO-0.4B; or: tspo convert DOWNLOADED_FOLDER --out tspo-0.4b":
        ("skip", "downloads hzf666/TSPO-0.4B (network); conversion itself: tests/test_convert.py"),
    'tspo select VIDEO "QUESTION" -k 16 [--selector DIR] [--encoder SPEC] \\':
        ("skip", "synopsis with placeholders; each subcommand: tests/test_cli_*.py, test_training_cli.py, ..."),
    "tspo train fit --config examples/configs/synthetic_needle.yaml   # offline, CPU: minutes (below)": ("run", None),
    "# the synthetic needles where the DPO config reads them (one training step renders them), then a log": ("run", None),
    "tspo eval --manifest held_out.jsonl --selector DIR --methods tspo,uniform,clip,bin-max,aks \\":
        ("skip", "synopsis with placeholders (--oracle A|B|C); tspo eval: tests/test_evaluate.py"),
    'sel = TSPOSelector.from_pretrained("my_selector")':
        ("skip", "needs a Qwen2-VL processor and model; examples/plugin_qwen.py does the same offline (test_examples)"),
    "python -m lmms_eval --model tspo_video \\":
        ("elsewhere", "tests/test_plugins_lmms_eval_real.py::test_readme_prints_this_command (make test-lmms)"),
    "from tspo import select_frames":
        ("skip", "fragment: `selector`, `question`, `options` and `oracle` are the reader's own; zoom and "
                 "reflection: tests/test_zoom.py, tests/test_reflect.py"),
    '{"id": "kitchen-03", "video": "clips/kitchen-03.mp4", "question": "What does the woman pick up?", "options": ["a cup", "a knife", "a towel", "a phone"], "answer": "B", "kind": "general", "duration_s": 94.0, "target_spans_s": [], "evidence_spans_s": [[41.0, 47.5]], "extra": {}}':
        ("skip", "a manifest line, not a command; the schema: tests/test_manifest.py"),
    "tspo synth render --out own --num 3 --min-seconds 8 --max-seconds 12 --size 64 --seed 0   # or your clips":
        ("elsewhere", "tests/test_own_videos.py::test_readme_own_videos_worked_example_runs"),
    "# one GPU (or CPU): decode workers feed batched encoder calls":
        ("skip", "needs 8 GPUs / several nodes and a data/train.jsonl of the reader's; `tspo features` on CPU with "
                 "2 gloo ranks and decode workers: tests/test_features.py"),
    "pip install 'tspo[lmms]'":
        ("elsewhere", "make test-lmms builds .venv-lmms from this extra alone (tests/test_plugins_lmms_compat.py)"),
    'sel = select_frames("video.mp4", "What happens after the goal?", num_frames=8, selector="my_selector",':
        ("skip", "fragment: `processor` and `question` are the reader's own Qwen2-VL; the same path with tiny "
                 "models: tests/test_select_clips.py"),
    'tspo select long.mp4 "QUESTION" --strategy zoom [--coarse-candidates 128] [--zoom-spans 4] \\':
        ("skip", "synopsis with optional flags in brackets; tests/test_cli_select.py runs --strategy zoom"),
}

SMALL = {
    "trainer": {"max_steps": 2, "val_check_interval": 2, "callbacks": []},
    "data": {"synth": {"num_train": 8, "num_val": 4, "train_targets": 2, "val_targets": 2, "distractors": 2,
                       "target_seconds": [16, 24], "min_minutes": 2.5, "max_minutes": 3.0}},
}


def readme_blocks() -> list[tuple[str, str, str]]:
    """(language, name = first line, text) of every fenced block, in README order."""
    text = README.read_text()
    found = re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
    return [(lang, body.strip().splitlines()[0].strip(), body) for lang, body in found]


def shrink(text: str, small_config: str) -> str:
    """The block as written, at small sizes (module docstring)."""
    text = re.sub(r"(tspo train fit --config \S+\.yaml)", rf"\1 --config {small_config}", text)
    text = re.sub(r"--limit \d+", "--limit 8", text)
    return text.replace("ViT-L-14:openai", "tiny-random")


def test_every_readme_block_is_registered():
    names = [name for _, name, _ in readme_blocks()]
    unknown = [n for n in names if n not in BLOCKS]
    assert not unknown, f"README blocks not in BLOCKS (add each with run/skip/elsewhere): {unknown}"
    gone = [n for n in BLOCKS if n not in names]
    assert not gone, f"BLOCKS names blocks the README no longer has: {gone}"
    for name, (how, why) in BLOCKS.items():
        assert how in {"run", "skip", "elsewhere"} and (how == "run" or why), name


@pytest.fixture
def workdir(tmp_path):
    from tspo import TSPOSelector

    (tmp_path / "examples").symlink_to(ROOT / "examples")
    write_video(tmp_path / "video.mp4", seconds=20)
    write_video(tmp_path / "long.mp4", seconds=40)
    sel = TSPOSelector(encoder="tiny-random", cache=False)
    for where in ("runs/needle/selector", "my_selector"):
        sel.save_pretrained(tmp_path / where)
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(SMALL))
    return tmp_path


RUN = [(lang, name, body) for lang, name, body in readme_blocks() if BLOCKS.get(name, ("?",))[0] == "run"]


@pytest.mark.parametrize(("lang", "name", "body"), RUN, ids=[name[:40] for _, name, _ in RUN])
def test_readme_block_runs(lang, name, body, workdir):
    code = shrink(body, "small.yaml")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TSPO_CACHE": str(workdir / "tspo_cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if lang == "python":
        cmd = [sys.executable, "-c", code]
    else:
        assert lang == "bash", f"README block {name!r}: no runner for language {lang!r}"
        cmd = ["bash", "-euo", "pipefail", "-c", code]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"README block {name!r} failed:\n{code}\n--- stderr:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
