"""Methods = scorer x rule: one registry behind the selector, `tspo eval`, `tspo select` and the held-out check."""

from __future__ import annotations

import pytest
import torch

from tspo.agents import (
    METHODS,
    RULES,
    SCORERS,
    TemporalAgent,
    get_method,
    select_aks,
    select_bin_max,
    select_topk,
)
from tspo.cli import main as tspo_main
from tspo.evaluation.evaluate import EvalConfigError, check_methods, make_selector
from tspo.features.cache import FeatureCache
from tspo.selection.selector import TSPOSelector

QUESTION = "What colour is the square?"


def test_registry_names_scorer_and_rule():
    assert METHODS == ("tspo", "uniform", "clip", "bin-max", "aks", "tspo+aks")
    assert set(SCORERS) == {"tspo", "clip"} and set(RULES) == {"top-k", "uniform", "bin-max", "aks", "nms", "shot"}
    combos = {name: (get_method(name).scorer, get_method(name).rule) for name in METHODS}
    assert combos == {"tspo": ("tspo", "top-k"), "uniform": (None, "uniform"), "clip": ("clip", "top-k"),
                      "bin-max": ("clip", "bin-max"), "aks": ("clip", "aks"), "tspo+aks": ("tspo", "aks")}
    free = get_method("tspo+bin-max")                       # any SCORER+RULE comes free
    assert (free.scorer, free.rule, free.needs_agent) == ("tspo", "bin-max", True)
    with pytest.raises(ValueError, match=r"unknown selection method 'tspo\+random'.*SCORER\+RULE"):
        get_method("tspo+random")


def test_each_rule_is_the_pure_baseline_function():
    scores = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.05, 0.6, 0.4, 0.5, 0.0, 0.95])
    torch.testing.assert_close(get_method("clip").pick(scores, 12, 4), select_topk(scores, 4))
    torch.testing.assert_close(get_method("bin-max").pick(scores, 12, 4), select_bin_max(scores, 4))
    torch.testing.assert_close(get_method("aks").pick(scores, 12, 4), select_aks(scores, 4))
    torch.testing.assert_close(get_method("tspo+aks").pick(scores, 12, 4), select_aks(scores, 4))
    batch = torch.stack([scores, scores.flip(0)])
    assert get_method("uniform").pick(batch, 12, 3).shape == (2, 3)         # batched rules keep k per row


def test_tspo_plus_aks_runs_aks_over_the_agents_scores(tiny_encoder, short_video, tmp_path):
    torch.manual_seed(0)
    agent = TemporalAgent(dim=tiny_encoder.dim)
    torch.nn.init.normal_(agent.mlp[-1].weight, std=0.5)                   # an agent that differs from CLIP
    sel = TSPOSelector(encoder=tiny_encoder, agent=agent, cache=FeatureCache(tmp_path / "c"))
    res = sel.select(short_video, QUESTION, num_frames=4, method="tspo+aks")
    agent_scores = sel.score(sel.features(short_video).features, QUESTION, "tspo")
    torch.testing.assert_close(torch.from_numpy(res.scores), agent_scores)
    assert res.positions.tolist() == select_aks(agent_scores, 4).tolist() and res.method == "tspo+aks"
    clip_scores = sel.score(sel.features(short_video).features, QUESTION, "aks")
    assert not torch.allclose(clip_scores, agent_scores)


def test_entry_points_take_registry_names(short_video, capsys):
    assert check_methods("tspo+aks,uniform,clip+bin-max") == ["tspo+aks", "uniform", "clip+bin-max"]
    with pytest.raises(EvalConfigError, match="unknown or no methods"):
        check_methods("tspo,best")
    with pytest.raises(EvalConfigError, match=r"\[.tspo\+aks.\] score with the trained agent: each needs --selector"):
        make_selector(None, "tiny-random", ["uniform", "tspo+aks"])
    assert tspo_main(["select", str(short_video), QUESTION, "--encoder", "tiny-random", "--method", "nope"]) == 2
    assert "unknown selection method 'nope'" in capsys.readouterr().err
