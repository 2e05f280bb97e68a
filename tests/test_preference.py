"""Answer logs (tspo.evaluation.answer_log) and preference pairs (tspo.objectives.preference): formats, pairing rule, what is dropped and why."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from training_helpers import small_datamodule

from tspo.evaluation.answer_log import (
    AnswerLogError,
    AnswerLogger,
    collect_answers,
    read_answer_log,
    write_answer_log,
)
from tspo.objectives.preference import PreferenceError, group_pairs, pairs_from_groups, pairs_from_log
from tspo.rewards import OracleCache, SimulatedOracle

K = 16


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    dm = small_datamodule(tmp_path_factory.getbasetemp() / "training_data")
    dm.setup("fit")
    return dm.train_set


def test_group_pairs_orders_by_reward_and_drops_ties_padding_and_small_margins():
    r = torch.tensor([[1.0, 0.5, 1.0, 0.0], [2.0, 0.0, 9.0, 0.0]])
    valid = torch.tensor([[True, True, True, True], [True, True, False, False]])
    q, c, rj = group_pairs(r, valid)
    got = sorted(zip(q.tolist(), c.tolist(), rj.tolist()))
    # group 0: 1.0 > 0.5 > 0.0, the two 1.0s tie; group 1: only members 0 and 1 are valid
    assert got == [(0, 0, 1), (0, 0, 3), (0, 1, 3), (0, 2, 1), (0, 2, 3), (1, 0, 1)]
    assert (r[q, c] > r[q, rj]).all()
    q2, _, _ = group_pairs(r, valid, min_margin=0.5)                # 1.0 vs 0.5 is not more than 0.5
    assert len(q2) == 3
    with pytest.raises(PreferenceError, match="min_margin"):
        group_pairs(r, valid, min_margin=-1)
    with pytest.raises(PreferenceError, match=r"\[Q, M\]"):
        group_pairs(r[0])


def _record(sample, times, letter, error=None, oracle_id="sim"):
    return {"v": 1, "sample_id": sample.id, "timestamps_s": [float(t) for t in times], "positions": None,
            "letter": letter, "error": error, "oracle_id": oracle_id, "policy": "test"}


def test_pairs_from_log_scores_like_training_and_counts_what_it_drops(dataset):
    item = dataset[0]
    sample, times, mask = item["sample"], item["timestamps"].numpy(), item["target_mask"].numpy()
    inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
    wrong = next(letter for letter in "ABCD" if letter != sample.answer)
    good = np.sort(np.r_[inside[:8], outside[:8]])                   # R_T = 0.5
    bad = np.sort(outside[-K:])                                      # R_T = 0
    other = np.sort(np.r_[inside[-8:], outside[8:16]])               # R_T = 0.5, like good
    records = [
        _record(sample, times[good], sample.answer),                 # 1 + 0.5
        _record(sample, times[bad], sample.answer),                  # 1 + 0
        _record(sample, times[other], None),                         # unparsed: 0 + 0.5
        _record(sample, times[good], sample.answer),                 # duplicate of the first
        _record(sample, times[bad], wrong, error="timeout"),         # failed: dropped
        _record(sample, times[good] + 0.3, sample.answer),           # between candidates: off grid
        _record(sample, times[good][:4], sample.answer),             # other k
        {**_record(sample, times[good], sample.answer), "sample_id": "nope"},
    ]
    pairs = pairs_from_log(records, dataset, K)
    s = pairs.stats
    assert (s["failed"], s["off_grid"], s["other_k"], s["unknown_sample"], s["duplicates"]) == (1, 1, 1, 1, 1)
    assert s["selections"] == 3 and s["questions"] == 1
    got = sorted((tuple(c.tolist()), tuple(r.tolist()), round(float(m), 4))
                 for c, r, m in zip(pairs.chosen, pairs.rejected, pairs.margin))
    expected = sorted([(tuple(good), tuple(bad), 0.5), (tuple(good), tuple(other), 1.0),
                       (tuple(bad), tuple(other), 0.5)])
    assert got == expected
    assert (pairs.index == 0).all()
    # reward weights change the ranking: with w_a = 0 good and other tie (dropped), both beat bad
    only_t = pairs_from_log(records, dataset, K, w_accuracy=0.0)
    assert len(only_t) == 2 and torch.allclose(only_t.margin, torch.tensor([0.5, 0.5]))
    with pytest.raises(PreferenceError, match="no usable answers"):
        pairs_from_log(records[4:5], dataset, K)


def test_logger_inside_the_cache_logs_real_calls_and_all_three_formats_agree(dataset, tmp_path):
    log = tmp_path / "answers.jsonl"
    oracle = OracleCache(AnswerLogger(SimulatedOracle(), log, policy="uniform"), tmp_path / "cache.sqlite")
    sent = collect_answers(dataset, oracle, K, draws=4, policy="uniform", rows=range(6), seed=0)
    again = collect_answers(dataset, oracle, K, draws=4, policy="uniform", rows=range(6), seed=0)
    assert sent == again == 24
    records = read_answer_log(log)
    assert len(records) == oracle.misses == 24 and oracle.hits == 24          # the repeat cost no call
    assert {r["policy"] for r in records} == {"uniform"} and all(len(r["positions"]) == K for r in records)
    from_log = pairs_from_log(records, dataset, K)
    from_cache = pairs_from_log(read_answer_log(tmp_path / "cache.sqlite"), dataset, K)
    key = lambda p: sorted(zip(p.index.tolist(), map(tuple, p.chosen.tolist()), map(tuple, p.rejected.tolist())))  # noqa: E731
    assert len(from_log) > 0 and key(from_log) == key(from_cache)
    assert from_log.stats["questions"] == 6
    pytest.importorskip("pyarrow")
    back = read_answer_log(write_answer_log(records, tmp_path / "answers.parquet"))
    assert key(pairs_from_log(back, dataset, K)) == key(from_log)


def test_clip_policy_draws_differ_from_uniform_and_are_seeded(dataset, tmp_path):
    logs = {}
    for name, policy, seed in (("u", "uniform", 0), ("c", "clip", 0), ("c2", "clip", 0)):
        logger = AnswerLogger(SimulatedOracle(), tmp_path / f"{name}.jsonl", policy=policy)
        collect_answers(dataset, logger, K, draws=3, policy=policy, rows=range(4), seed=seed, tau=0.01)
        logs[name] = [r["timestamps_s"] for r in read_answer_log(tmp_path / f"{name}.jsonl")]
    assert logs["c"] == logs["c2"] and logs["c"] != logs["u"]
    with pytest.raises(AnswerLogError, match="policy"):
        collect_answers(dataset, SimulatedOracle(), K, draws=2, policy="aks")


def test_read_answer_log_refuses_mixed_oracles_missing_fields_and_bad_lines(dataset, tmp_path):
    sample = dataset.samples[0]
    times = dataset[0]["timestamps"].numpy()[:K]
    path = write_answer_log([_record(sample, times, "A", oracle_id="a"), _record(sample, times, "B", oracle_id="b")],
                            tmp_path / "mixed.jsonl")
    with pytest.raises(AnswerLogError, match="several oracles"):
        read_answer_log(path)
    assert [r["letter"] for r in read_answer_log(path, oracle_id="b")] == ["B"]
    with pytest.raises(AnswerLogError, match="no answers by oracle"):
        read_answer_log(path, oracle_id="c")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"sample_id": "x"}) + "\n")
    with pytest.raises(AnswerLogError, match="timestamps_s"):
        read_answer_log(bad)
    bad.write_text("{not json\n")
    with pytest.raises(AnswerLogError, match="JSON Lines"):
        read_answer_log(bad)
    with pytest.raises(AnswerLogError, match="does not exist"):
        read_answer_log(tmp_path / "missing.jsonl")


def test_pairs_from_groups_maps_members_to_dataset_rows():
    idx = torch.arange(2 * 3 * 2).reshape(2, 3, 2)
    rewards = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.7]])
    valid = torch.tensor([[True, True, False], [True, True, True]])
    pairs = pairs_from_groups(torch.tensor([7, 3]), idx, rewards, valid)
    got = sorted(zip(pairs.index.tolist(), map(tuple, pairs.chosen.tolist()), map(tuple, pairs.rejected.tolist())))
    assert got == [(3, (10, 11), (6, 7)), (3, (10, 11), (8, 9)), (7, (0, 1), (2, 3))]
    torch.testing.assert_close(pairs.margin.sort().values, torch.tensor([0.2, 0.2, 1.0]))
