"""R_A, R_T and their composition."""

import numpy as np
import pytest
import torch

from tspo.rewards import RewardInputError, accuracy_reward, compose_reward, in_spans, temporal_reward


def test_accuracy_reward_values():
    assert accuracy_reward("B", "B") == 1.0
    assert accuracy_reward("b", "B") == 1.0
    assert accuracy_reward("C", "B") == 0.0
    assert accuracy_reward(None, "B") == 0.0


@pytest.mark.parametrize("letter, answer", [("AB", "A"), ("A", "1"), ("A", None), (3, "A"), ("A", "")])
def test_accuracy_reward_rejects_non_letters(letter, answer):
    with pytest.raises(RewardInputError):
        accuracy_reward(letter, answer)


def test_temporal_reward_counts_picks_inside_end_exclusive_spans():
    spans = [[10.0, 20.0], [40.0, 41.0]]
    # 10 in, 19.5 in, 20 out (end-exclusive), 40 in, 41 out, 5 out -> 3 / 6
    assert temporal_reward([5.0, 10.0, 19.5, 20.0, 40.0, 41.0], spans) == pytest.approx(0.5)
    assert temporal_reward(np.array([0.0, 1.0]), []) == 0.0
    assert isinstance(temporal_reward([15.0], spans), float)


def test_temporal_reward_batched_group_matches_rows():
    spans = [[2.0, 4.0]]
    ts = np.array([[1.0, 2.0, 3.0, 5.0], [2.0, 2.5, 3.0, 3.5], [0.0, 1.0, 4.0, 6.0]])
    out = temporal_reward(ts, spans)
    assert out.shape == (3,)
    np.testing.assert_allclose(out, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(out, [temporal_reward(row, spans) for row in ts])


def test_temporal_reward_from_mask_over_candidates():
    mask = np.zeros(10, dtype=bool)
    mask[3:6] = True
    assert temporal_reward(positions=np.array([0, 3, 4, 9]), target_mask=mask) == pytest.approx(0.5)
    np.testing.assert_allclose(temporal_reward(positions=np.array([[3, 4], [0, 1]]), target_mask=mask), [1.0, 0.0])


def test_in_spans_broadcasts():
    out = in_spans(np.array([[0.5, 1.5]]), [[0.0, 1.0]])
    assert out.tolist() == [[True, False]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"timestamps_s": [], "target_spans_s": [[0, 1]]}, "empty selection"),
        ({"timestamps_s": [1.0], "target_spans_s": [[2, 1]]}, "end < start"),
        ({"timestamps_s": [1.0], "target_spans_s": [[0, 1, 2]]}, "shape"),
        ({"timestamps_s": [1.0], "target_spans_s": [[0, float("nan")]]}, "NaN"),
        ({"timestamps_s": [float("inf")], "target_spans_s": [[0, 1]]}, "NaN or inf"),
        ({"timestamps_s": [1.0]}, "both"),
        ({}, "either"),
        ({"timestamps_s": [1.0], "target_spans_s": [[0, 1]], "positions": [0]}, "either"),
        ({"positions": np.array([0, 12]), "target_mask": np.zeros(10, bool)}, "0..9"),
        ({"positions": np.array([0]), "target_mask": np.zeros(10)}, "bool"),
        ({"positions": np.array([0.5]), "target_mask": np.zeros(10, bool)}, "int"),
    ],
)
def test_temporal_reward_bad_inputs(kwargs, match):
    with pytest.raises(RewardInputError, match=match):
        temporal_reward(**kwargs)


def test_compose_reward_general_and_needle():
    g = compose_reward("general", 1.0)
    assert (g.total, g.accuracy, g.temporal) == (2.0, 1.0, 1.0)
    n = compose_reward("needle", 0.0, 0.25)
    assert (n.total, n.accuracy, n.temporal) == (0.25, 0.0, 0.25)
    w = compose_reward("needle", 1.0, 0.5, w_a=2.0, w_t=0.5)
    assert w.total == pytest.approx(2.25)
    assert compose_reward("general", 0.0, r_t=0.3, w_t=0.5).total == pytest.approx(0.5)  # r_t ignored


def test_compose_reward_vectorised_numpy_and_torch():
    r_a = np.array([1.0, 0.0, 1.0])
    r_t = np.array([0.5, 0.25, 0.0])
    out = compose_reward("needle", r_a, r_t)
    np.testing.assert_allclose(out.total, [1.5, 0.25, 1.0])
    t = compose_reward("general", torch.tensor([1.0, 0.0]))
    assert torch.equal(t.total, torch.tensor([2.0, 1.0]))
    assert torch.equal(t.temporal, torch.ones(2))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("other", 1.0), {}, "kind"),
        (("needle", 1.0), {}, "need r_t"),
        (("general", None), {}, "r_a"),
        (("general", 1.0), {"w_a": float("nan")}, "w_a"),
        (("general", 1.0), {"w_t": "1"}, "w_t"),
    ],
)
def test_compose_reward_bad_inputs(args, kwargs, match):
    with pytest.raises(RewardInputError, match=match):
        compose_reward(*args, **kwargs)


def test_one_span_rule_is_end_exclusive_everywhere():
    """start <= t < end: a pick on the boundary of back-to-back spans belongs to the later one only,
    in the reward, the simulated oracle's coverage and the plots alike."""
    from tspo.plots import _inside
    from tspo.rewards import OracleQuery, SimulatedOracle, span_hits

    spans = [[0.0, 1.0], [1.0, 2.0]]
    hits = span_hits(np.array([0.0, 1.0, 2.0]), spans)
    np.testing.assert_array_equal(hits, [[True, False], [False, True], [False, False]])
    np.testing.assert_array_equal(in_spans([[1.0, 2.0]], spans), [[True, False]])
    np.testing.assert_array_equal(_inside(np.array([0.5, 2.0]), np.array(spans)), [True, False])
    assert temporal_reward(np.array([1.0, 2.0]), [[1.0, 2.0]]) == 0.5
    query = OracleQuery("s", "q", ("a", "b"), [2.0], meta={"answer": "A", "kind": "needle",
                                                           "evidence_spans_s": [[1.0, 2.0]]})
    assert not SimulatedOracle().covers_evidence(query)
