"""`tspo eval`: per-method accuracy, target fraction, breakdowns, failed answers, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tspo.agents import get_method
from tspo.data_synth import Sample, render_dataset, write_manifest
from tspo.evaluation.evaluate import (
    EvalConfigError,
    check_methods,
    duration_bucket,
    evaluate_samples,
    format_table,
    main,
)
from tspo.rewards import OracleAnswer, OracleConfigError, SimulatedOracle, build_oracle
from tspo.settings import SelectionSettings

STATS_KEYS = {"accuracy", "target_fraction", "seconds_per_sample", "n"}


class FeatureSelector:
    """Scores = feature column 0 (1 inside the target, 0 outside): 'tspo' finds the target exactly."""

    encoder = SimpleNamespace(spec="fake")
    cache = None
    settings = SelectionSettings()

    def select_from_features(self, features, question, k, method, options=None):
        scores = None if method == "uniform" else features[:, 0] + 1e-3 * torch.arange(len(features))
        return get_method(method).pick(scores, len(features), k), scores


def _needle(sid: str, duration: float, target: tuple[float, float], kind: str = "needle") -> Sample:
    return Sample(id=sid, video="unused.mp4", question="What happens?", options=["a", "b", "c", "d"], answer="B",
                  kind=kind, target_spans_s=[list(target)] if kind == "needle" else [],
                  evidence_spans_s=[[target[0], target[1]]], duration_s=duration)


def _feature_fn(sample: Sample):
    t = np.arange(int(sample.duration_s), dtype=np.float64)
    inside = (t >= sample.evidence_spans_s[0][0]) & (t < sample.evidence_spans_s[0][1])
    return SimpleNamespace(features=torch.from_numpy(inside.astype(np.float32))[:, None], timestamps_s=t)


def test_tspo_beats_uniform_and_breakdowns_have_the_design_shape() -> None:
    samples = [_needle("s0", 100, (40, 50)), _needle("s1", 1000, (500, 510)), _needle("g0", 100, (10, 20), "general")]
    result = evaluate_samples(samples, "tspo,uniform", SimulatedOracle(guess="wrong"), 4, FeatureSelector(),
                              feature_fn=_feature_fn, progress=False)
    tspo, uni = result["methods"]["tspo"], result["methods"]["uniform"]
    assert set(tspo) == STATS_KEYS and tspo["n"] == 3
    assert tspo["accuracy"] == 1.0 and tspo["target_fraction"] == 1.0
    # uniform with k=4 over 100 s: picks at 0, 33, 66, 99 miss [40, 50) and [10, 20); over 1000 s it misses too
    assert uni["accuracy"] == 0.0 and uni["target_fraction"] == 0.0
    assert set(result["by_duration"]) == {"<2min", "15-60min"}
    assert result["by_duration"]["15-60min"]["tspo"]["n"] == 1
    assert result["by_kind"]["general"]["tspo"]["target_fraction"] is None  # no target spans there
    assert result["by_kind"]["needle"]["uniform"]["n"] == 2
    assert result["failed"] == {"tspo": 0, "uniform": 0} and "samples" not in result
    json.dumps(result)  # JSON-ready
    table = format_table(result)
    assert "tspo" in table and "100.0%" in table and "kind = general" in table


class FlakyOracle:
    """Fails every 'clip' query (as a server error would), answers the rest like the simulated oracle."""

    oracle_id, needs_frames = "flaky", False

    def __init__(self) -> None:
        self.inner = SimulatedOracle(guess="wrong")
        self.calls = 0

    def answer(self, queries):
        self.calls += 1
        answers = self.inner.answer(queries)
        return [OracleAnswer.failed("HTTP 500") if i == 1 else a for i, a in enumerate(answers)]


def test_failed_answers_are_counted_not_scored() -> None:
    oracle = FlakyOracle()
    samples = [_needle(f"s{i}", 100, (40, 50)) for i in range(3)]
    result = evaluate_samples(samples, ["tspo", "clip", "uniform"], oracle, 4, FeatureSelector(),
                              feature_fn=_feature_fn, progress=False, per_sample=True)
    assert oracle.calls == 3  # one batched call per sample, all methods together
    clip = result["methods"]["clip"]
    assert clip["n"] == 0 and clip["accuracy"] is None and clip["target_fraction"] == 1.0
    assert result["failed"]["clip"] == 3 and result["failure_examples"][0]["error"] == "HTTP 500"
    assert result["methods"]["tspo"]["accuracy"] == 1.0
    assert len(result["samples"]) == 9 and result["samples"][1]["correct"] is None


class MumblingOracle(FlakyOracle):
    """Answers every 'clip' query with text that names no option (the model did answer)."""

    def answer(self, queries):
        answers = self.inner.answer(queries)
        return [OracleAnswer(None, raw="it is unclear") if i == 1 else a for i, a in enumerate(answers)]


def test_unparsed_answers_are_wrong_not_failed() -> None:
    samples = [_needle(f"s{i}", 100, (40, 50)) for i in range(3)]
    result = evaluate_samples(samples, ["tspo", "clip"], MumblingOracle(), 4, FeatureSelector(),
                              feature_fn=_feature_fn, progress=False, per_sample=True)
    clip = result["methods"]["clip"]
    assert clip["n"] == 3 and clip["accuracy"] == 0.0                 # scored, as wrong answers
    assert result["failed"] == {"tspo": 0, "clip": 0} and result["unparsed"] == {"tspo": 0, "clip": 3}
    assert result["unparsed_examples"][0] == {"sample_id": "s0", "method": "clip", "raw": "it is unclear"}
    assert result["samples"][1]["correct"] is False and result["samples"][1]["unparsed"] is True
    assert "unparsed answers (scored as wrong): {'clip': 3}" in format_table(result)
    json.dumps(result)


class WidthOracle:
    oracle_id, needs_frames = "width", True
    shapes: list = []

    def answer(self, queries):
        WidthOracle.shapes += [q.frames.shape for q in queries]
        return [OracleAnswer("B") for _ in queries]


def test_oracle_sees_whole_frames_not_a_centre_crop(tmp_path) -> None:
    from conftest import write_video

    video = write_video(tmp_path / "wide.mp4", seconds=8, fps=2, size=(32, 64))   # 1:2
    sample = Sample(id="w", video=str(video), question="What happens?", options=["a", "b"], answer="B",
                    kind="general", target_spans_s=[], evidence_spans_s=[[0.0, 8.0]], duration_s=8.0)
    WidthOracle.shapes = []
    evaluate_samples([sample], "uniform", WidthOracle(), 3, FeatureSelector(), feature_fn=_feature_fn,
                     frame_size=16, progress=False)
    assert WidthOracle.shapes == [(3, 16, 32, 3)]


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(EvalConfigError, match="unknown or no methods"):
        check_methods("tspo,random")
    with pytest.raises(ValueError, match="num_frames"):
        evaluate_samples([_needle("s", 100, (1, 2))], "tspo", SimulatedOracle(), 0, FeatureSelector(),
                         feature_fn=_feature_fn)
    with pytest.raises(EvalConfigError, match="no samples"):
        evaluate_samples([], "tspo", SimulatedOracle(), 4, FeatureSelector(), feature_fn=_feature_fn)
    with pytest.raises(OracleConfigError, match="unknown oracle spec"):
        build_oracle("gpt5")
    assert duration_bucket(119.9) == "<2min" and duration_bucket(900) == "15-60min" and duration_bucket(4e4) == ">60min"


@pytest.fixture(scope="module")
def small_manifest(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evalcli")
    samples = render_dataset(root, 2, seed=3, min_seconds=8, max_seconds=10, fps=2, size=32, progress=False)
    return write_manifest(root / "manifest.jsonl", samples)


def test_cli_on_rendered_videos_with_tiny_random(small_manifest: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TSPO_CACHE", str(tmp_path / "cache"))
    from tspo.selection.selector import TSPOSelector

    TSPOSelector(encoder="tiny-random", cache=False).save_pretrained(tmp_path / "sel")
    out = tmp_path / "eval.json"
    rc = main(["--manifest", str(small_manifest), "--methods", "tspo,uniform,clip,bin-max,aks",
               "--selector", str(tmp_path / "sel"), "-k", "4", "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert list(result["methods"]) == ["tspo", "uniform", "clip", "bin-max", "aks"]
    for stats in result["methods"].values():
        assert set(stats) == STATS_KEYS and stats["n"] == 2 and stats["target_fraction"] is None
    assert result["config"]["encoder"] == "tiny-random" and result["by_kind"].keys() == {"general"}
    assert "all samples (2)" in capsys.readouterr().out
    # without a selector, tspo cannot run: a clear error, exit code 2
    assert main(["--manifest", str(small_manifest), "--methods", "tspo", "--encoder", "tiny-random"]) == 2
    assert "needs --selector" in capsys.readouterr().err
    assert main(["--manifest", str(tmp_path / "none.jsonl"), "--methods", "uniform", "--encoder", "tiny-random"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_with_a_pixel_oracle_and_the_benchmark_guard(small_manifest: Path, tmp_path: Path, monkeypatch,
                                                          capsys) -> None:
    monkeypatch.setenv("TSPO_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "clip.json"
    # the CLIP zero-shot oracle needs pixels: the picks of all methods are decoded once per sample
    assert main(["--manifest", str(small_manifest), "--methods", "uniform,clip", "--encoder", "tiny-random",
                 "--oracle", "clip", "-k", "3", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["methods"]["clip"]["n"] == 2 and result["config"]["oracle"] == "clip"
    # public-benchmark samples carry no evidence: the simulated oracle would call everything right
    lvb = tmp_path / "lvb_val.json"
    lvb.write_text(json.dumps([{"id": "q1", "video_path": "v.mp4", "question": "Why?", "candidates": ["a", "b"],
                                "correct_choice": 1, "duration": 30.0}]))
    capsys.readouterr()
    assert main(["--benchmark", "longvideobench", "--annotations", str(lvb), "--methods", "uniform",
                 "--encoder", "tiny-random", "--oracle", "simulated"]) == 2
    assert "cannot judge them" in capsys.readouterr().err


def test_log_answers_with_draws_logs_groups_without_changing_the_figures(tmp_path) -> None:
    from tspo.evaluation.answer_log import AnswerLogger, read_answer_log

    samples = [_needle("s0", 100, (40, 50)), _needle("s1", 120, (60, 75))]
    plain = evaluate_samples(samples, "tspo,uniform,aks", SimulatedOracle(guess="wrong"), 4, FeatureSelector(),
                             feature_fn=_feature_fn, progress=False)
    logger = AnswerLogger(SimulatedOracle(guess="wrong"), tmp_path / "log.jsonl", policy="eval")
    logged = evaluate_samples(samples, "tspo,uniform,aks", logger, 4, FeatureSelector(), feature_fn=_feature_fn,
                              progress=False, log_draws=3, seed=1)
    for m, stats in plain["methods"].items():
        assert (logged["methods"][m]["accuracy"], logged["methods"][m]["target_fraction"]) == \
            (stats["accuracy"], stats["target_fraction"])
    records = read_answer_log(tmp_path / "log.jsonl")
    # per sample: 3 methods' picks + 3 draws for each of tspo and uniform (aks has no random version)
    assert len(records) == 2 * (3 + 2 * 3)
    assert all(len(r["timestamps_s"]) == 4 and r["timestamps_s"] == sorted(r["timestamps_s"]) for r in records)
    per_sample = {sid: {tuple(r["timestamps_s"]) for r in records if r["sample_id"] == sid} for sid in ("s0", "s1")}
    assert all(len(v) >= 4 for v in per_sample.values())           # the draws differ from each other
    with pytest.raises(EvalConfigError, match="log_draws"):
        evaluate_samples(samples, "aks", logger, 4, FeatureSelector(), feature_fn=_feature_fn, progress=False,
                         log_draws=2)


def test_cli_log_answers_flag_is_checked(tmp_path, capsys) -> None:
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [_needle("s0", 100, (40, 50))])
    code = main(["--manifest", str(manifest), "--methods", "uniform", "--encoder", "tiny-random", "--log-draws", "2"])
    assert code == 2 and "--log-answers" in capsys.readouterr().err


def test_cli_skips_a_missing_video_reports_kinds_and_errors_on_stderr(tmp_path: Path, monkeypatch, capsys) -> None:
    """Issue 21 item 8: one missing video is skipped with its reason (stderr, counted in --out), the other
    samples are still evaluated and written; the per-question-kind table is printed; --on-error stop stops."""
    monkeypatch.setenv("TSPO_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    samples = render_dataset(data, 3, seed=5, min_seconds=8, max_seconds=10, fps=2, size=32, progress=False,
                             kinds=("colour", "count"))
    manifest = write_manifest(data / "manifest.jsonl", samples)
    Path(samples[1].video).unlink()
    out = tmp_path / "eval.json"
    args = ["--manifest", str(manifest), "--methods", "uniform,clip", "--encoder", "tiny-random", "-k", "3",
            "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    result = json.loads(out.read_text())
    assert result["num_samples"] == 2 and result["methods"]["uniform"]["n"] == 2
    assert [r["sample_id"] for r in result["skipped"]] == [samples[1].id]
    reason = result["skipped"][0]["error"]
    assert "does not exist" in reason and "manifest's folder" in reason and str(data.resolve()) in reason
    assert samples[1].id in captured.err and "skipped 1 sample" in captured.err
    assert "skipped" not in captured.out
    kinds = {s.extra["qa_kind"] for i, s in enumerate(samples) if i != 1}
    assert set(result["by_question_kind"]) == kinds | {"all"}
    assert "per question kind" in captured.out and all(f"| {k} |" in captured.out for k in kinds)
    assert "95 % bootstrap interval over target clips" in captured.out and "| kind | n | clips |" in captured.out
    clip_all = result["by_question_kind"]["all"]["clip"]
    assert clip_all["targets"] == 2 and clip_all["coverage_ci"][0] <= clip_all["coverage"] <= clip_all["coverage_ci"][1]
    # --on-error stop: the run stops at the broken sample, the samples before it are still written, exit 1
    assert main([*args, "--on-error", "stop"]) == 1
    result = json.loads(out.read_text())
    assert result["stopped"]["sample_id"] == samples[1].id and result["num_samples"] == 1
    assert "stopped at sample" in capsys.readouterr().err
