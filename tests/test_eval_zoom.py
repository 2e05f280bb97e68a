"""`tspo eval` / `tspo select` with --strategy zoom and --reflect; zoom on a composed needle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tspo.data_synth import NeedleConfig, compose_needles, render_dataset, write_manifest
from tspo.evaluation.evaluate import evaluate_samples, main
from tspo.rewards import SimulatedOracle
from tspo.selection.selector import TSPOSelector
from tspo.selection.zoom import ZoomConfig, sample_zoom_source


@pytest.fixture(scope="module")
def plain_manifest(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evalzoom")
    samples = render_dataset(root, 2, seed=5, min_seconds=12, max_seconds=14, fps=2, size=32, progress=False)
    return write_manifest(root / "manifest.jsonl", samples)


def test_eval_cli_zoom_and_reflection(plain_manifest: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TSPO_CACHE", str(tmp_path / "cache"))
    TSPOSelector(encoder="tiny-random", cache=False).save_pretrained(tmp_path / "sel")
    out = tmp_path / "eval.json"
    rc = main(["--manifest", str(plain_manifest), "--methods", "tspo,uniform", "--selector", str(tmp_path / "sel"),
               "-k", "2", "--strategy", "zoom", "--coarse-candidates", "4", "--zoom-spans", "1",
               "--max-frames-encoded", "8", "--reflect", "2", "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    tspo, uni = result["methods"]["tspo"], result["methods"]["uniform"]
    assert tspo["n"] == 2 and 1.0 <= tspo["oracle_calls"] <= 3.0
    assert tspo["frames_encoded"] <= 8 * tspo["oracle_calls"]   # the cap holds in every round
    assert uni["frames_encoded"] == pytest.approx(13.0, abs=1.0)  # uniform: single-stage over the 1 fps grid
    cfg = result["config"]
    assert cfg["strategy"] == "zoom" and cfg["reflect"] == 2 and cfg["zoom"]["max_frames"] == 8
    assert "oracle calls" in capsys.readouterr().out
    assert main(["--manifest", str(plain_manifest), "--methods", "uniform", "--encoder", "tiny-random",
                 "--reflect", "-1"]) == 2
    assert "rounds" in capsys.readouterr().err
    assert main(["--manifest", str(plain_manifest), "--methods", "uniform", "--encoder", "tiny-random",
                 "--strategy", "zoom", "--coarse-candidates", "200", "--max-frames-encoded", "100"]) == 2
    assert "max_frames" in capsys.readouterr().err


def test_select_cli_zoom(plain_manifest: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from tspo.cli.select import main as select_main
    from tspo.data_synth import load_manifest

    monkeypatch.setenv("TSPO_CACHE", str(tmp_path / "cache"))
    video = load_manifest(plain_manifest)[0].video
    assert select_main([video, "What colour is it?", "-k", "3", "--encoder", "tiny-random", "--strategy", "zoom",
                        "--coarse-candidates", "4", "--zoom-spans", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["strategy"] == "zoom" and len(d["timestamps"]) == 3 and d["frames_encoded"] <= 12
    assert select_main([video, "q", "--encoder", "tiny-random", "--strategy", "zoom", "--fine-fps", "0"]) == 2
    assert "fine_fps" in capsys.readouterr().err


def test_zoom_on_a_composed_needle_reads_the_composed_grid(tmp_path: Path) -> None:
    targets = render_dataset(tmp_path / "t", 1, seed=1, min_seconds=12, max_seconds=12, fps=2, size=32,
                             progress=False)
    hay = render_dataset(tmp_path / "h", 2, seed=2, family="distractor", min_seconds=60, max_seconds=60, fps=2,
                         size=32, progress=False)
    cfg = NeedleConfig(min_minutes=2, max_minutes=2, repeats=(1, 1), target_fraction=None,
                       segment_seconds=(10.0, 20.0), target_order="contiguous")
    needles, _ = compose_needles(targets, [h.video for h in hay], 1, seed=0, config=cfg, progress=False)
    sel = TSPOSelector(encoder="tiny-random", cache=None)
    zoom = ZoomConfig(coarse_candidates=16, num_spans=2, max_frames=40)
    source = sample_zoom_source(needles[0], sel, zoom)
    assert source.duration_s == pytest.approx(needles[0].duration_s)
    result = evaluate_samples(needles, "tspo,clip", SimulatedOracle(), 4, sel, progress=False, strategy="zoom",
                              zoom=zoom, per_sample=True)
    for row in result["samples"]:
        assert row["frames_encoded"] <= 40 and row["oracle_calls"] == 1 and len(row["timestamps_s"]) == 4
        assert np.all(np.asarray(row["timestamps_s"]) % 1 == 0)  # picks lie on the 1 fps grid
