"""`tspo demo`: a reduced run writes the whole report, and `tspo eval` reproduces its table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tspo import demo, evaluate
from tspo.agents import METHODS, FilterAgent
from tspo.selection.selector import TSPOSelector

STATS_KEYS = {"accuracy", "target_fraction", "seconds_per_sample", "n"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "report"
    result = demo.run_demo(demo.quick_config(str(out)))
    return out, result


def test_report_folder_is_complete(quick_run) -> None:
    out, result = quick_run
    for name in ("eval.json", "REPORT.md", "training_curves.png", "eval_summary.png"):
        assert (out / name).is_file(), name
    assert len(list(out.glob("selection_*_tspo.png"))) == 1 and len(list(out.glob("selection_*_uniform.png"))) == 1
    on_disk = json.loads((out / "eval.json").read_text())
    assert tuple(on_disk["methods"]) == METHODS            # every registered method, tspo+aks included
    for stats in on_disk["methods"].values():
        assert set(stats) == STATS_KEYS and stats["n"] == 3 and 0.0 <= stats["target_fraction"] <= 1.0
    assert on_disk["by_kind"].keys() == {"needle"} and on_disk["methods"] == result["methods"]
    report = (out / "REPORT.md").read_text()
    assert "WITHOUT pretrained weights" in report and "tspo eval --manifest" in report
    assert "of its picks inside the target" in report
    sel = TSPOSelector.from_pretrained(out / "selector", cache=False)
    assert sel.encoder.spec == "tiny-random" and sel.config["trained_with"]["steps"] == 8


def test_tspo_eval_reproduces_the_demo_table(quick_run, monkeypatch, tmp_path: Path) -> None:
    out, result = quick_run
    monkeypatch.setenv("TSPO_CACHE", str(tmp_path / "fresh_cache"))  # features recomputed from the videos
    again = tmp_path / "again.json"
    rc = evaluate.main(["--manifest", result["config"]["manifest"], "--selector", str(out / "selector"),
                        "--methods", ",".join(METHODS), "--oracle", "simulated", "--seed", "0",
                        "-k", "16", "--out", str(again)])
    assert rc == 0
    reproduced = json.loads(again.read_text())["methods"]
    for method, stats in result["methods"].items():
        assert reproduced[method]["accuracy"] == stats["accuracy"], method
        assert reproduced[method]["target_fraction"] == stats["target_fraction"], method


def test_question_world_demo_reports_every_kind(tmp_path: Path) -> None:
    out = tmp_path / "question"
    cfg = demo.quick_config(str(out), world="question")
    result = demo.run_demo(cfg)
    on_disk = json.loads((out / "eval.json").read_text())
    kinds = on_disk["by_question_kind"]
    assert kinds == result["by_question_kind"] and kinds["all"]["tspo"]["n"] == 4
    for per_method in kinds.values():
        assert set(per_method) == set(demo.DemoConfig().methods)
        assert all(0.0 <= v["coverage"] <= 1.0 and 0.0 <= v["accuracy"] <= 1.0 for v in per_method.values())
    shown = len([k for k in kinds if k != "all"])
    # the question world trains the filter agent (warm start, then GRPO) and judges its family's own method
    assert cfg.primary == "tspo+shot" == FilterAgent.default_method and cfg.model_overrides["agent_family"] == "filter"
    assert json.loads((out / "selector" / "config.json").read_text())["agent"]["family"] == "filter"
    assert len(list(out.glob("selection_*_clip.png"))) == min(3, shown) == len(list(out.glob("selection_*_tspo+shot.png")))
    report = (out / "REPORT.md").read_text()
    assert "tspo-synth" in report and "Per question kind" in report and "| all | 4 | 4 |" in report
    assert "paired 95 % bootstrap interval over target clips" in report
    # the AKS sentence is measured: it counts the needles where AKS and CLIP top-k picked the same frames
    assert re.search(r"AKS picks equal CLIP top-k on (all 4|\d of 4) held-out needles at k = 8", report)
    assert TSPOSelector.from_pretrained(out / "selector", cache=False).encoder.spec == "tspo-synth"
    from tspo.data_synth import load_manifest

    val = load_manifest(result["config"]["manifest"])
    assert len(val) == 4 and all(s.extra["confuser_ratio"] == 1.0 for s in val)


def test_kind_verdict_compares_with_baselines_only() -> None:
    def stats(cov: float) -> dict:
        return {"accuracy": cov, "coverage": cov, "n": 10, "targets": 5}

    kinds = {"after": {"tspo": stats(0.5), "tspo+aks": stats(0.9), "clip": stats(0.2), "aks": stats(0.2),
                       "uniform": stats(0.3)}, "all": {"tspo": stats(0.5)}}
    text = demo.kind_verdict(kinds, {"after": {"diff": 0.3, "ci": [0.1, 0.5], "n": 10, "targets": 5}})
    assert "best baseline uniform 0.30 (+0.20)" in text and "tspo+aks" not in text
    assert "+0.30 [+0.10, +0.50], above CLIP top-k" in text and "5 target clips" in text
    below = demo.kind_verdict(kinds, {"after": {"diff": -0.3, "ci": [-0.5, 0.1], "n": 10, "targets": 5}})
    assert "not distinguishable from CLIP top-k" in below


def test_question_world_headline_groups_kinds_by_their_interval_against_clip() -> None:
    """The question world's headline says where the selector is above, level with and below CLIP top-k,
    decided by the paired interval (not the texture world's "picks inside the target" goal)."""
    def d(lo: float, hi: float) -> dict:
        return {"diff": (lo + hi) / 2, "ci": [lo, hi], "n": 10, "targets": 5}

    line = demo.kind_summary({"after": d(0.8, 1.0), "motion": d(-0.19, -0.03), "count": d(0.0, 0.38),
                              "order": d(0.1, 0.4), "all": d(0.1, 0.2)}, "tspo+nms")
    assert line == ("TSPO (tspo+nms) vs CLIP top-k in evidence coverage per question kind (paired 95 % interval "
                    "over target clips): above on after, order; not distinguishable on count; below on motion.")
    assert "below" not in demo.kind_summary({"after": d(0.1, 0.2)})


def test_demo_training_console_is_quiet(tmp_path: Path, capfd) -> None:
    import dataclasses

    cfg = dataclasses.replace(demo.quick_config(str(tmp_path / "report")), progress=True)
    demo.run_demo(cfg)
    console = "\n".join(capfd.readouterr()).replace("\r", "\n")
    assert f"step {cfg.steps}/{cfg.steps}" in console
    for noise in ("v_num", "GPU available", "TPU available", "Epoch 0/", "litlogger", "deprecated"):
        assert noise not in console, noise


def test_demo_primary_must_be_one_of_its_methods(tmp_path: Path) -> None:
    """The verdicts judge DemoConfig.primary: a name outside its methods is refused before any work."""
    cfg = demo.DemoConfig(out_dir=str(tmp_path / "never"), primary="tspo+nms", methods=("tspo", "clip"))
    with pytest.raises(ValueError, match=r"primary 'tspo\+nms' must be one of its methods \['tspo', 'clip'\]"):
        demo.run_demo(cfg)
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("world, argv, want", [
    ("question", ["--num-val", "40", "--num-train", "100"], {"num_val": 40, "val_targets": 20, "num_train": 100,
                                                             "train_targets": 50}),
    ("texture", ["--num-val", "24"], {"num_val": 24, "val_targets": 6, "num_train": 128, "train_targets": 32}),
    ("question", [], {"num_val": 420, "val_targets": 210, "num_train": 1024, "train_targets": 512}),
])
def test_demo_sizes_from_the_command_line_keep_the_worlds_needles_per_clip(monkeypatch, world, argv, want) -> None:
    """--num-train / --num-val scale the target clips too (question world: 2 needles per clip, texture: 4), so
    a smaller run renders fewer clips instead of rendering the default 512 for 100 needles."""
    from tspo.cli import demo as demo_cli

    seen = {}
    monkeypatch.setattr(demo_cli, "run_demo", lambda cfg: seen.setdefault("cfg", cfg))
    assert demo_cli.main(["--world", world, "--out", "unused", *argv]) == 0
    assert {k: getattr(seen["cfg"], k) for k in want} == want
