"""benchmarks/bench_agent.py and bench_train.py: the filter family's cost rows (forward vs the paper agent; a
GRPO update with the oracle recipe vs the paper's default), at tiny sizes, in this process."""

from __future__ import annotations

import json

import torch

from benchmarks import bench_agent, bench_train


def test_agent_rows_hold_the_linear_and_the_filter_vs_paper_columns():
    threads = torch.get_num_threads()
    result = bench_agent.run(lengths=(48, 96), dim=32, repeats=2, fresh_processes=False)
    assert torch.get_num_threads() == threads                  # the single-threaded pair gives the threads back
    assert [r["T"] for r in result["rows"]] == [48, 96]
    for row in result["rows"]:
        for key in ("agent_ms", "linear_only_ms", "ratio", "filter_ms", "paper_1t_ms", "filter_1t_ms",
                    "filter_vs_agent", "filter_vs_agent_median"):
            assert row[key] > 0, key
        assert min(row["agent_peak_mib"], row["linear_peak_mib"], row["filter_peak_mib"]) >= 0
    assert "Worst filter/agent ratio" in result["notes"] and "T = 3,600" not in result["notes"]
    json.dumps(result)                                          # storable as results/NAME.json


def test_agent_notes_say_whether_the_goal_length_meets_the_goal(monkeypatch):
    pair = {"agent": 0.010, "filter": 0.012, "agent_median": 0.011, "filter_median": 0.013, "ratio_median": 1.2}
    child = {"median_s": 0.01, "peak_mib": 1.0}
    monkeypatch.setattr(bench_agent, "_child", lambda *a: child)
    monkeypatch.setattr(bench_agent, "_interleaved", lambda *a: pair)
    notes = bench_agent.run(lengths=(bench_agent.GOAL_T,), fresh_processes=False)["notes"]
    assert "At T = 3,600: filter/agent 1.20" in notes and "met." in notes and "NOT" not in notes
    monkeypatch.setattr(bench_agent, "_interleaved", lambda *a: {**pair, "filter": 0.02})
    assert "NOT met" in bench_agent.run(lengths=(bench_agent.GOAL_T,), fresh_processes=False)["notes"]


def test_grpo_update_filter_recipe_vs_paper_default():
    from tspo.settings import ORACLE_GRPO_RECIPE

    module = bench_train.grpo_step_module(16, 4, 8, agent_family="filter", **ORACLE_GRPO_RECIPE)
    assert module.agent.reads_options and module.grpo.logprob == "plackett_luce" and module.grpo.tau_relative
    assert module.reward_options.answer_reward == "soft" and module.reward_options.w_temporal == 0.0
    threads = torch.get_num_threads()
    row = bench_train.grpo_filter_vs_paper(dim=16, num_t=40, groups=8, k=4, repeats=2, warmup=1)
    assert torch.get_num_threads() == threads
    assert row["case"].startswith("GRPO update, filter + oracle recipe (and paper + TSPOModule's defaults) vs paper "
                                  "+ the paper's recipe (G=8, k=4, T=40, D=16)")
    assert row["filter_recipe_ms"] > 0 and row["paper_recipe_ms"] > 0 and row["paper_defaults_ms"] > 0
    assert row["ratio"] > 0 and row["ratio_per_round"] > 0
    assert row["defaults_ratio"] > 0 and row["defaults_ratio_per_round"] > 0


def test_fixed_answers_give_both_reward_kinds_a_spread():
    """The canned answers make non-degenerate groups for the hard (0/1) and the soft reward alike."""
    answers = bench_train.FixedAnswers().answer([None] * 16)
    assert len(answers) == 16 and answers[0] is answers[8]
    hard = [a.letter == "B" for a in answers[:8]]
    soft = [a.option_probs["B"] for a in answers[:8]]
    assert 0 < sum(hard) < 8 and len(set(soft)) == 8
    assert all(abs(sum(a.option_probs.values()) - 1) < 1e-9 for a in answers)
