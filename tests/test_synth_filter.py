"""Comprehensive-temporal filter with the simulated oracle: too easy / kept / too hard, with reasons."""

import json

import numpy as np
import pytest

from tspo.cli.synth import main as synth_main
from tspo.data_synth import Sample, filter_samples, uniform_timestamps, write_manifest
from tspo.rewards import OracleAnswer, SimulatedOracle


def _needle(sid, evidence, duration=128.0, video="v.mp4"):
    return Sample(sid, video, "Which colour?", ["red", "green", "blue", "cyan"], "C", "needle",
                  [[0.0, duration]], evidence, duration)


SAMPLES = [
    _needle("easy", [[42.0, 43.0]]),   # 4 uniform picks of 128 candidates: 0, 42, 84, 127
    _needle("kept", [[10.0, 11.0]]),   # 64 uniform picks land on even seconds: 10 is one
    _needle("hard", [[1.0, 2.0]]),     # ... 1 is not
    _needle("kept2", [[90.0, 91.0]]),
]


def test_uniform_picks_follow_the_candidate_grid():
    pos, ts = uniform_timestamps(SAMPLES[0], 4)
    assert pos.tolist() == [0, 42, 84, 127] and ts.tolist() == [0.0, 42.0, 84.0, 127.0]
    pos, ts = uniform_timestamps(_needle("short", None, duration=10.0), 64)
    assert pos.tolist() == list(range(10))                       # fewer candidates than asked: all of them
    assert uniform_timestamps(SAMPLES[0], 4, fps=2.0, max_candidates=None)[1].tolist() == [0.0, 42.5, 85.0, 127.5]


def test_filter_keeps_only_questions_that_need_search():
    kept, report = filter_samples(SAMPLES, SimulatedOracle(guess="wrong"), progress=False, batch_size=3)
    assert [s.id for s in kept] == ["kept", "kept2"] == report.kept
    assert report.too_easy == ["easy"] and report.too_hard == ["hard"] and report.num_dropped == 2
    assert report.reasons["easy"] == "answered from 4 uniform frames"
    assert report.reasons["hard"] == "not answered from 64 uniform frames"
    assert "kept 2 of 4; dropped 1 too easy, 1 too hard, 0 failed" in report.summary()
    # both numbers are configurable: with 2 and 128 frames nothing is too hard and 'easy' is not easy
    kept, report = filter_samples(SAMPLES, SimulatedOracle(guess="wrong"), easy_frames=2, hard_frames=128,
                                  progress=False)
    assert len(kept) == 4 and report.too_hard == [] == report.too_easy


class _FlakyOracle:
    oracle_id, needs_frames = "flaky", False

    def answer(self, queries):
        return [OracleAnswer.failed("server down") if q.sample_id == "kept" else OracleAnswer("C") for q in queries]


class _PixelOracle:
    oracle_id, needs_frames = "pixels", True

    def answer(self, queries):
        assert all(q.frames is not None and q.frames.shape[0] == q.timestamps_s.shape[0] for q in queries)
        return [OracleAnswer("A") for _ in queries]


def test_failures_are_counted_not_fatal(tmp_path):
    kept, report = filter_samples(SAMPLES, _FlakyOracle(), progress=False)
    assert report.failed == ["kept"] and "server down" in report.reasons["kept"]
    assert report.too_easy == ["easy", "hard", "kept2"] and kept == []
    missing = _needle("missing", [[1.0, 2.0]], video=str(tmp_path / "gone.mp4"))
    kept, report = filter_samples([missing], _PixelOracle(), progress=False)
    assert report.failed == ["missing"] and report.reasons["missing"].startswith("unreadable:")
    with pytest.raises(ValueError, match="easy_frames < hard_frames"):
        filter_samples(SAMPLES, _FlakyOracle(), easy_frames=8, hard_frames=8)


class _MumblingOracle:
    """Answers from 4 frames with text naming no option; from 64 frames correctly, except for 'kept2'."""

    oracle_id, needs_frames = "mumbling", False

    def answer(self, queries):
        return [OracleAnswer(None, raw="hmm") if len(q.timestamps_s) == 4 or q.sample_id == "kept2"
                else OracleAnswer("C") for q in queries]


def test_unparsed_answers_are_wrong_not_failed():
    kept, report = filter_samples(SAMPLES, _MumblingOracle(), progress=False)
    assert report.failed == [] and report.unparsed == ["easy", "kept", "hard", "kept2"]
    # unreadable from 4 frames = not answered from them; unreadable from 64 = too hard
    assert [s.id for s in kept] == ["easy", "kept", "hard"] and report.too_hard == ["kept2"]
    assert "4 samples had an answer with no readable option" in report.summary()


def test_pixel_oracles_get_whole_frames(tmp_path):
    from conftest import write_video

    class WidthOracle(_PixelOracle):
        def answer(self, queries):
            shapes.update(q.frames.shape[1:] for q in queries)
            return super().answer(queries)

    shapes = set()
    video = write_video(tmp_path / "wide.mp4", seconds=12, fps=2, size=(32, 64))
    s = Sample("w", str(video), "Q?", ["a", "b"], "B", duration_s=12.0, evidence_spans_s=[[0.0, 3.0]])
    filter_samples([s], WidthOracle(), frame_size=16, progress=False)
    assert shapes == {(16, 32, 3)}                                  # 1:2 kept, no centre crop


def test_pixel_oracles_get_decoded_frames(tmp_path):
    from tspo.data_synth import render_target_clip

    render_target_clip(tmp_path / "c.mp4", np.random.default_rng(0), 12, fps=2, size=32)
    s = Sample("c", str(tmp_path / "c.mp4"), "Q?", ["a", "b"], "B", duration_s=12.0, evidence_spans_s=[[0.0, 3.0]])
    kept, report = filter_samples([s], _PixelOracle(), frame_size=32, progress=False)
    assert report.too_hard == ["c"]                                # always "A", the answer is "B"


def test_filter_cli_writes_kept_manifest_and_report(tmp_path, capsys):
    src = write_manifest(tmp_path / "in.jsonl", SAMPLES)
    out = tmp_path / "kept.jsonl"
    assert synth_main(["filter", "--manifest", str(src), "--out", str(out)]) == 0
    report = json.loads((tmp_path / "kept.filter_report.json").read_text())
    assert "easy" in report["too_easy"]      # covered by 4 picks; the others depend on seeded guesses
    assert len(report["kept"]) + len(report["too_easy"]) + len(report["too_hard"]) == 4
    assert "filter: kept" in capsys.readouterr().out
