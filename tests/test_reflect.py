"""Reflection: the simulated oracle's confidence model, the select-and-answer loop, evidence-only needles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tspo.evaluation.reflect import (
    ReflectionError,
    answer_confidence,
    pick_cells,
    reflection_loop,
    select_and_answer,
)
from tspo.rewards import OracleAnswer, OracleConfigError, OracleQuery, SimulatedOracle
from tspo.selection.selector import TSPOSelector
from tspo.selection.zoom import GridFeatureSource, ZoomConfig

OPTS = ("cat", "dog", "bird", "fish")


def query(ts, evidence=((10.0, 15.0),), answer="C"):
    return OracleQuery("s", "what?", OPTS, np.asarray(ts, float),
                       meta={"answer": answer, "kind": "needle", "evidence_spans_s": [list(e) for e in evidence]})


def test_simulated_confidence_model():
    oracle = SimulatedOracle(confidence=0.8)
    sure, guess = oracle.answer([query([11.0, 40.0]), query([30.0, 40.0])])
    assert sure.letter == "C" and sure.option_probs == pytest.approx({"A": 0.2 / 3, "B": 0.2 / 3, "C": 0.8, "D": 0.2 / 3})
    assert guess.option_probs == pytest.approx(dict.fromkeys("ABCD", 0.25))  # flat when guessing
    assert SimulatedOracle(confidence=None).answer([query([11.0])])[0].option_probs is None
    assert "confidence=0.8" in oracle.oracle_id
    with pytest.raises(OracleConfigError, match="confidence"):
        SimulatedOracle(confidence=0.3)


def _scripted(answers):
    """select_fn / ask_fn pair over fixed rounds; records what each round was told to suppress."""
    told = []

    def select_fn(suppress):
        told.append(suppress.copy())
        r = len(told) - 1
        return np.array([10.0 * r]), np.array([[10.0 * r, 10.0 * r + 5]])

    def ask_fn(times):
        return answers[len(told) - 1]

    return select_fn, ask_fn, told


def probs(letter, p):
    return OracleAnswer(letter=letter, option_probs={c: (p if c == letter else (1 - p) / 3) for c in "ABCD"})


def test_reflection_loop_stops_when_confident_and_keeps_best():
    select_fn, ask_fn, told = _scripted([probs("A", 0.25), probs("C", 0.9), probs("B", 0.95)])
    res = reflection_loop(select_fn, ask_fn, rounds=2, threshold=0.5)
    assert res.oracle_calls == 2 and res.answer.letter == "C"  # stopped at the confident answer
    np.testing.assert_array_equal(told[1], [[0.0, 5.0]])  # round 2 suppressed round 1's span
    np.testing.assert_array_equal(res.timestamps_s, [10.0])


def test_reflection_loop_budget_and_most_confident():
    select_fn, ask_fn, told = _scripted([probs("A", 0.4), probs("B", 0.3), probs("D", 0.45)])
    res = reflection_loop(select_fn, ask_fn, rounds=1, threshold=0.5)
    assert res.oracle_calls == 2 and res.answer.letter == "A"  # no round 3; A (0.4) beats B (0.3)
    assert reflection_loop(*_scripted([probs("A", 0.3)])[:2], rounds=0).oracle_calls == 1


def test_reflection_loop_failed_answer_ends_and_errors():
    failed = OracleAnswer.failed("HTTP 500")
    res = reflection_loop(*_scripted([failed, probs("A", 0.9)])[:2], rounds=3)
    assert res.oracle_calls == 1 and res.answer.is_failed
    with pytest.raises(ReflectionError, match="option probabilities"):
        answer_confidence(OracleAnswer(letter="A"))
    with pytest.raises(ReflectionError, match="rounds"):
        reflection_loop(*_scripted([])[:2], rounds=-1)
    with pytest.raises(ReflectionError, match="threshold"):
        reflection_loop(*_scripted([])[:2], threshold=0.0)


def test_pick_cells():
    np.testing.assert_allclose(pick_cells(np.array([4.0, 8.0]), np.arange(0, 20, 2.0)), [[3, 5], [7, 9]])


class _Selector:
    """The selector methods select_and_answer calls, scoring by feature dim 1."""

    from tspo.settings import SelectionSettings

    settings = SelectionSettings(num_frames=2, method="tspo")

    def select_zoom_from_source(self, source, question, k, method, zoom, suppress, options=None):
        from tspo.selection.zoom import zoom_select

        return zoom_select(source, lambda f: f[:, 1].clone(), k, zoom, self.method_for(method), suppress)

    agent = None

    def score(self, features, question, method, options=None):
        return features[:, 1].clone()

    def _question_text(self, question):
        return None

    def _score_text(self, features, text, m, options):
        return features[:, 1].clone()

    # the real single-stage strategy (suppression included), over the fake scores above
    select_from_features = TSPOSelector.select_from_features
    method_for = TSPOSelector.method_for  # method None: the selector's own (settings.method here)
    _clip_k = staticmethod(TSPOSelector._clip_k)


def _two_needle_source():
    """A decoy (score 1.0 at 490-519) the agent prefers, and the evidence (0.9 at 2000-2004 in a 0.5 halo)."""
    feats = torch.zeros(3600, 2)
    feats[1990:2020, 1] = 0.5
    feats[2000:2005, 1] = 0.9
    feats[490:520, 1] = 1.0
    return GridFeatureSource(feats, np.arange(3600.0), 3600.0)


def test_select_and_answer_zoom_reflects_to_the_next_span():
    meta = {"answer": "B", "kind": "needle", "evidence_spans_s": [[2000.0, 2005.0]]}
    oracle = SimulatedOracle(seed=0)
    cfg = ZoomConfig(num_spans=1, max_frames=200)
    once = select_and_answer(_Selector(), None, "q", OPTS, oracle, 2, rounds=0, zoom=cfg, source=_two_needle_source(),
                             meta=meta)
    assert once.oracle_calls == 1 and once.timestamps_s.min() < 600  # fooled by the decoy
    source = _two_needle_source()
    res = select_and_answer(_Selector(), None, "q", OPTS, oracle, 2, rounds=2, zoom=cfg, source=source, meta=meta)
    assert res.oracle_calls == 2 and res.answer.letter == "B"
    np.testing.assert_array_equal(res.timestamps_s, [2000, 2001])
    # coarse frames once, then one 56 s span per round: nothing encoded twice
    assert res.frames_encoded == source.frames_encoded
    assert 128 + 2 * 50 <= res.frames_encoded <= 128 + 2 * 57


def test_select_and_answer_single_stage_suppresses_picks():
    from tspo.features.cache import VideoFeatures

    times = np.arange(0, 100, 10.0)
    feats = torch.zeros(10, 2)
    feats[:, 1] = torch.tensor([0, 0, 0.9, 0, 0, 0, 1.0, 0, 0.8, 0])
    vf = VideoFeatures(feats, times, np.arange(10), 100.0)
    meta = {"answer": "A", "kind": "needle", "evidence_spans_s": [[78.0, 82.0]]}
    res = select_and_answer(_Selector(), None, "q", OPTS, SimulatedOracle(), 1, rounds=3, strategy="single",
                            features=vf, meta=meta)
    # picks 60 (decoy), then 20, then 80 (the evidence): three calls, the confident answer kept
    assert res.oracle_calls == 3 and res.answer.letter == "A"
    assert [r.timestamps_s.tolist() for r in res.rounds] == [[60.0], [20.0], [80.0]]


def test_evidence_only_needle():
    from tspo.data_synth import Sample
    from tspo.data_synth.needle import SynthError, evidence_only

    video = [{"source": "h.mp4", "start_s": 0.0, "end_s": 100.0},
             {"source": "t.mp4", "start_s": 0.0, "end_s": 30.0},
             {"source": "h.mp4", "start_s": 100.0, "end_s": 150.0}]
    s = Sample(id="n", video=video, question="q?", options=list(OPTS), answer="A", kind="needle",
               target_spans_s=[[100.0, 130.0]], evidence_spans_s=[[110.0, 115.0]], duration_s=180.0,
               extra={"segment_roles": ["distractor", "target", "distractor"], "segment_repeat": [-1, 0, -1]})
    e = evidence_only(s)
    assert e.video[1] == {"source": "t.mp4", "start_s": 10.0, "end_s": 15.0}
    assert e.duration_s == 155.0 and e.target_spans_s == e.evidence_spans_s == [[100.0, 105.0]]
    assert e.extra["segment_roles"] == ["distractor", "target", "distractor"] and "segment_repeat" not in e.extra
    with pytest.raises(SynthError, match="composed needle"):
        evidence_only(Sample(id="x", video="a.mp4", question="q", options=["a", "b"], answer="A", kind="general",
                             target_spans_s=[], evidence_spans_s=None, duration_s=1.0, extra={}))


def test_evidence_only_moves_the_evidence_groups_with_the_evidence():
    from tspo.data_synth import Sample
    from tspo.data_synth.needle import evidence_only

    video = [{"source": "h.mp4", "start_s": 0.0, "end_s": 100.0},
             {"source": "t.mp4", "start_s": 0.0, "end_s": 30.0},
             {"source": "h.mp4", "start_s": 100.0, "end_s": 150.0}]
    s = Sample(id="n", video=video, question="q?", options=list(OPTS), answer="A", kind="needle",
               target_spans_s=[[100.0, 130.0]], evidence_spans_s=[[104.0, 106.0], [110.0, 115.0]],
               duration_s=180.0, extra={"segment_roles": ["distractor", "target", "distractor"],
                                        "coverage": "each", "evidence_groups_s": [[[104.0, 106.0]], [[110.0, 115.0]]]})
    e = evidence_only(s)
    assert e.evidence_spans_s == [[100.0, 107.0]]  # two touching pieces, merged
    assert e.extra["evidence_groups_s"] == [[[100.0, 102.0]], [[102.0, 107.0]]]
    assert s.extra["evidence_groups_s"] == [[[104.0, 106.0]], [[110.0, 115.0]]]  # the source is not touched
