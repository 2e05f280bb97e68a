"""OracleQuery validation and the simulated oracle's documented behaviour."""

import numpy as np
import pytest

from tspo.rewards import (
    Oracle,
    OracleAnswer,
    OracleConfigError,
    OracleInputError,
    OracleQuery,
    SimulatedOracle,
)

OPTS = ("cat", "dog", "bird", "fish")


def q(ts, kind="needle", answer="C", evidence=None, target=None, positions=None, sample_id="s1", options=OPTS):
    meta = {"answer": answer, "kind": kind}
    if evidence is not None:
        meta["evidence_spans_s"] = evidence
    if target is not None:
        meta["target_spans_s"] = target
    return OracleQuery(sample_id, "what?", options, np.asarray(ts, float),
                       positions=None if positions is None else np.asarray(positions), meta=meta)


# ---- OracleQuery / OracleAnswer -------------------------------------------------------------

def test_query_normalises_and_exposes_letters():
    query = OracleQuery("s", "q", ["a", "b", "c"], [1, 2, 3], frames=[np.zeros((4, 4, 3), np.uint8)] * 3)
    assert query.options == ("a", "b", "c") and query.letters == "ABC"
    assert query.frames.shape == (3, 4, 4, 3) and query.timestamps_s.dtype == np.float64
    assert query.num_frames == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"options": ("only",)}, "2..26 options"),
        ({"options": tuple("x" * 27)}, "2..26 options"),
        ({"options": "abc"}, "sequence"),
        ({"timestamps_s": []}, "empty"),
        ({"timestamps_s": [2.0, 1.0]}, "ascending"),
        ({"meta": {"answer": "E"}}, "not one of the option letters ABCD"),
        ({"meta": {"answer": 1}}, "option letters"),
        ({"frames": [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)]}, "mixed shapes"),
        ({"frames": np.zeros((2, 4, 4, 3), np.float32)}, "uint8"),
        ({"frames": np.zeros((3, 4, 4, 3), np.uint8)}, "3 frames but 2 timestamps"),
        ({"positions": np.array([1])}, "positions"),
        ({"sample_id": ""}, "sample_id"),
    ],
)
def test_query_bad_input(kwargs, match):
    base = {"sample_id": "s", "question": "q", "options": OPTS, "timestamps_s": [0.0, 1.0]}
    base.update(kwargs)
    with pytest.raises(OracleInputError, match=match):
        OracleQuery(**base)


def test_answer_outcomes_and_roundtrip():
    answered, unparsed, failed = OracleAnswer("A"), OracleAnswer(None, raw="I think the cat"), OracleAnswer.failed("boom")
    assert answered.ok and not answered.unparsed and not answered.is_failed
    # the model answered but no letter could be read: scored (as wrong), not dropped
    assert unparsed.ok and unparsed.unparsed and not unparsed.is_failed
    # a failed query has no answer at all: dropped, never scored
    assert not failed.ok and failed.is_failed and not failed.unparsed and failed.error == "boom"
    with pytest.raises(OracleInputError, match="non-empty error"):
        OracleAnswer.failed("")
    ans = OracleAnswer("B", {"A": 0.2, "B": 0.8}, None, "B")
    assert OracleAnswer.from_dict(ans.to_dict()) == ans


# ---- SimulatedOracle ------------------------------------------------------------------------

def test_simulated_is_an_oracle_without_pixels():
    oracle = SimulatedOracle()
    assert isinstance(oracle, Oracle) and oracle.needs_frames is False


def test_needle_correct_when_enough_picks_in_evidence():
    oracle = SimulatedOracle(min_needle_picks=2, guess="wrong")
    ev = [[100.0, 104.0]]
    hit2 = q([10, 101, 103], evidence=ev, target=[[90, 120]])
    hit1 = q([10, 101, 110], evidence=ev, target=[[90, 120]])  # 110 is in the target but not the evidence
    out = oracle.answer([hit2, hit1])
    assert out[0].letter == "C" and out[0].ok
    assert out[1].letter != "C" and out[1].ok


def test_needle_falls_back_to_target_spans():
    oracle = SimulatedOracle(guess="wrong")
    assert oracle.answer([q([5.0, 95.0], target=[[90, 120]])])[0].letter == "C"
    assert oracle.answer([q([5.0, 15.0], target=[[90, 120]])])[0].letter != "C"


def test_general_needs_a_pick_in_every_event():
    oracle = SimulatedOracle(guess="wrong")
    ev = [[0, 2], [10, 12]]
    both = q([1.0, 11.0], kind="general", evidence=ev)
    one = q([1.0, 5.0], kind="general", evidence=ev)
    assert [a.letter == "C" for a in oracle.answer([both, one])] == [True, False]
    # no evidence spans: nothing specific needed, always right
    assert oracle.answer([q([3.0], kind="general")])[0].letter == "C"
    stricter = SimulatedOracle(min_event_picks=2, guess="wrong")
    assert stricter.answer([q([1.0, 1.5, 11.0, 11.5], kind="general", evidence=ev)])[0].letter == "C"
    assert stricter.answer([both])[0].letter != "C"


def test_guess_rules():
    miss = [q([1.0 + i / 10, 50.0], target=[[100, 110]], sample_id=f"s{i}") for i in range(200)]
    first = SimulatedOracle(guess="first").answer(miss)
    assert {a.letter for a in first} == {"A"}
    wrong = SimulatedOracle(guess="wrong").answer(miss)
    assert "C" not in {a.letter for a in wrong} and {a.letter for a in wrong} == {"A", "B", "D"}
    rand = SimulatedOracle(guess="random").answer(miss)
    frac_correct = np.mean([a.letter == "C" for a in rand])
    assert 0.12 < frac_correct < 0.40  # ~1/4: a real model guessing among 4 options


def test_deterministic_per_sample_and_selection_across_instances():
    queries = [q([float(i), 50.0], target=[[100, 110]], positions=[i, 50], sample_id=f"id{i}") for i in range(30)]
    a = [x.letter for x in SimulatedOracle(seed=3).answer(queries)]
    b = [x.letter for x in SimulatedOracle(seed=3).answer(list(reversed(queries)))][::-1]
    c = [x.letter for x in SimulatedOracle(seed=4).answer(queries)]
    assert a == b
    assert a != c  # the seed matters


def test_simulated_bad_inputs():
    with pytest.raises(OracleConfigError, match="guess"):
        SimulatedOracle(guess="maybe")
    with pytest.raises(OracleConfigError, match="min_needle_picks"):
        SimulatedOracle(min_needle_picks=0)
    oracle = SimulatedOracle()
    with pytest.raises(OracleInputError, match="meta\\['answer'\\]"):
        oracle.answer([OracleQuery("s", "q", OPTS, [1.0], meta={"kind": "needle"})])
    with pytest.raises(OracleInputError, match="neither evidence_spans_s nor target_spans_s"):
        oracle.answer([q([1.0])])
    with pytest.raises(OracleInputError, match="kind"):
        oracle.answer([q([1.0], kind="other")])
    with pytest.raises(OracleInputError, match="list of OracleQuery"):
        oracle.answer(q([1.0], target=[[0, 1]]))


def test_import_does_not_load_transformers():
    import subprocess
    import sys

    code = "import sys, tspo.rewards; assert 'transformers' not in sys.modules, 'transformers imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)
