"""benchmarks/bench_filter_goal.py: its per-kind table, goal verdicts and argument checks (no world is built)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from benchmarks import bench_filter_goal as bench


def _cover() -> dict:
    kinds = np.array(["after"] * 4 + ["colour"] * 4)
    clusters = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    return {"kinds": kinds, "clusters": clusters,
            "clip": np.array([0, 0, 0, 0, 1, 1, 1, 1.0]), "clip+nms": np.array([0, 1, 0, 0, 1, 1, 1, 1.0]),
            "clip+shot": np.array([0, 0, 1, 0, 1, 1, 1, 1.0]),
            "filter s0": np.array([1, 1, 1, 1, 1, 1, 1, 0.0]), "tspo+nms s0": np.array([1, 1, 1, 1, 1, 1, 1, 1.0]),
            "tspo+shot s0": np.array([1, 1, 1, 0, 1, 1, 1, 1.0])}


def test_table_has_n_clips_intervals_and_paired_differences_per_kind():
    rows = bench.table(0.5, _cover(), [0])
    assert [r["kind"] for r in rows] == ["after", "colour", "all"]
    after = rows[0]
    assert (after["confuser ratio"], after["n"], after["clips"]) == ("0.5", 4, 2)
    assert after["clip"].startswith("0.00 [") and after["tspo+nms s0"] == "1.00 [1.00, 1.00]"
    assert after["Δ tspo+nms s0"] == "+1.00 [+1.00, +1.00]"
    assert rows[2]["n"] == 8


def test_goals_compare_with_the_kind_goal_or_the_best_baseline():
    verdict = bench.goals(1.0, _cover(), "filter s0")
    # after: every baseline is below 0.95, so the paired interval against the best (clip+nms, 0.25) is shown
    assert verdict["after"].startswith("yes (1.00 vs 0.95; vs clip+nms +0.75 [")
    assert verdict["colour"].startswith("no (0.75 vs 0.98")     # best baseline 1.00 - 0.02
    assert verdict["all"].startswith("no (0.88 vs 0.93")
    # at goal level but not separable from a best baseline below the goal: not met
    tied = {**_cover(), "clip+shot": np.array([1, 1, 1, 0, 1, 1, 1, 1.0])}
    assert bench.goals(1.0, tied, "filter s0")["after"].startswith("no (1.00 vs 0.95; vs clip+shot +0.25 [+0.00")


def test_bool_flags_and_mix_ratio_are_checked():
    assert bench._bool("true") is True and bench._bool("0") is False
    with pytest.raises(argparse.ArgumentTypeError, match="true or false"):
        bench._bool("maybe")
    with pytest.raises(ValueError, match="train-mix"):
        bench.mix_world(None, 1.0, False)
