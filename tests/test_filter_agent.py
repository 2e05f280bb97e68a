"""The filter agent family: maths, zero-init equivalence, linear cost, export, file format, options,
the NMS rule and the set-rule target, and a supervised check that it can learn "after"."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tspo.agents import (
    AGENT_FAMILIES,
    AgentConfigError,
    FilterAgent,
    TemporalAgent,
    build_agent,
    get_method,
    select_nms,
)
from tspo.agents.families import start_state
from tspo.agents.filter import standardise
from tspo.data_synth.events import COVERAGE_RULES
from tspo.features.dataset import collate, pad_options
from tspo.manifest import Sample
from tspo.objectives.set_rule import set_head_loss, set_rule_loss, set_rule_target, set_rule_targets
from tspo.selection.export import check_round_trip, export_agent, run_exported
from tspo.selection.selector import SelectorConfigError, TSPOSelector, load_selector_agent, select_frames
from tspo.training.options import AgentOptions, TrainingConfigError

DIM = 32


def _randomised(agent: FilterAgent, seed: int = 0, scale: float = 0.2) -> FilterAgent:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in agent.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return agent.eval()


def _reference(agent: FilterAgent, feats, text, options=None, mask=None) -> torch.Tensor:
    """The filter written the slow, obvious way: one loop over offsets d, for one video [T, D]."""
    paper = TemporalAgent(dim=agent.dim, window=agent.window, heads=agent.heads)
    paper.load_state_dict({k: v for k, v in agent.state_dict().items() if k in paper.state_dict()})
    base = paper(feats, text)
    q = F.cosine_similarity(feats, text[None], dim=-1)
    if options is None or not bool(mask.any()):
        o = torch.zeros_like(q)
    else:
        o = torch.stack([F.cosine_similarity(feats, opt[None], dim=-1) for opt in options[mask]]).max(0).values
    z = [(p - p.mean()) / p.std(unbiased=False).clamp_min(1e-6) for p in (q, o)]
    w = agent.filter(text).reshape(2, -1)
    R, T = agent.filter_radius, feats.shape[0]
    out = base.clone()
    for c in range(2):
        for d in range(-R, R + 1):
            for t in range(T):
                if 0 <= t + d < T:
                    out[t] += w[c, d + R] * z[c][t + d]
    return out


@pytest.mark.parametrize("T", [1, 5, 30])
def test_filter_matches_the_slow_reference(T):
    agent = _randomised(FilterAgent(dim=DIM, heads=8, filter_radius=4))
    g = torch.Generator().manual_seed(T)
    feats, text, options = torch.randn(T, DIM, generator=g), torch.randn(DIM, generator=g), torch.randn(3, DIM, generator=g)
    mask = torch.tensor([True, False, True])
    with torch.no_grad():
        torch.testing.assert_close(agent(feats, text, options, mask), _reference(agent, feats, text, options, mask),
                                   atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(agent(feats, text), _reference(agent, feats, text), atol=1e-4, rtol=1e-4)
        # batched rows are the unbatched ones; a row without valid options scores as without options
        batch = agent(torch.stack([feats, feats]), torch.stack([text, text]), torch.stack([options, options]),
                      torch.stack([mask, torch.zeros(3, dtype=torch.bool)]))
    torch.testing.assert_close(batch[0], agent(feats, text, options, mask))
    torch.testing.assert_close(batch[1], agent(feats, text))


def test_zero_init_is_the_paper_agent_and_paper_weights_start_it():
    paper = _randomised(TemporalAgent(dim=DIM, heads=8), seed=3)
    agent = FilterAgent(dim=DIM, heads=8)
    agent.load_state_dict(start_state(agent, paper))
    feats, text, options = torch.randn(2, 40, DIM), torch.randn(2, DIM), torch.randn(2, 4, DIM)
    with torch.no_grad():
        torch.testing.assert_close(agent(feats, text, options), paper(feats, text))
    assert agent.set_radius(text).tolist() == [0, 0]                 # untrained: plain top-k
    assert sum(p.numel() for p in agent.parameters()) - sum(p.numel() for p in paper.parameters()) == \
        DIM * 2 * 17 + 2 * 17 + DIM + 1
    with pytest.raises(AgentConfigError, match="the config asks"):   # another shape is refused
        start_state(agent, TemporalAgent(dim=DIM, heads=4))


def test_cost_is_linear_in_T_and_ten_hours_run_on_cpu():
    agent = _randomised(FilterAgent(dim=DIM, heads=8))
    with torch.no_grad():
        start = time.perf_counter()
        scores = agent(torch.randn(36_000, DIM), torch.randn(DIM), torch.randn(4, DIM))
        took = time.perf_counter() - start
    assert scores.shape == (36_000,) and torch.isfinite(scores).all()
    assert took < 10.0


def test_bad_inputs_name_the_fix():
    agent = FilterAgent(dim=DIM, heads=8)
    with pytest.raises(ValueError, match="options must be"):
        agent(torch.randn(2, 10, DIM), torch.randn(2, DIM), torch.randn(3, DIM))
    with pytest.raises(ValueError, match="option_mask must be"):
        agent(torch.randn(10, DIM), torch.randn(DIM), torch.randn(3, DIM), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="filter_radius must be an int"):
        FilterAgent(dim=DIM, heads=8, filter_radius=-1)


@pytest.mark.parametrize("fmt,name", [("torchscript", "agent.pt"), ("onnx", "agent.onnx")])
def test_export_round_trips_with_and_without_options(tmp_path, fmt, name):
    agent = _randomised(FilterAgent(dim=DIM, heads=8, window=4, filter_radius=3))
    path = export_agent(agent, tmp_path / name, fmt)
    assert check_round_trip(agent, path, lengths=(1, 3, 40)) < 1e-4
    feats, text = torch.randn(25, DIM), torch.randn(DIM)
    with torch.no_grad():
        expected = agent(feats, text).numpy()
    np.testing.assert_allclose(run_exported(path, feats.numpy(), text.numpy()), expected, atol=1e-4)
    options = torch.randn(5, DIM)
    with torch.no_grad():
        expected = agent(feats, text, options).numpy()
    np.testing.assert_allclose(run_exported(path, feats.numpy(), text.numpy(), options.numpy()), expected, atol=1e-4)


def test_selector_file_format_round_trip(tmp_path, tiny_encoder, short_video):
    agent = _randomised(FilterAgent(dim=tiny_encoder.dim, filter_radius=5, nms_radius=2), scale=0.05)
    sel = TSPOSelector(encoder=tiny_encoder, agent=agent, cache=False, num_frames=4)
    sel.save_pretrained(tmp_path / "sel")
    cfg = json.loads((tmp_path / "sel" / "config.json").read_text())
    assert cfg["agent"] == {"dim": 64, "window": 12, "heads": 8, "family": "filter", "filter_radius": 5,
                            "nms_radius": 2}
    loaded, _ = load_selector_agent(tmp_path / "sel")
    assert type(loaded) is FilterAgent and loaded.config == agent.config
    back = TSPOSelector.from_pretrained(tmp_path / "sel", encoder=tiny_encoder, cache=False)
    q, opts = "Which came first, the red circle or the blue square?", ["the red circle", "the blue square"]
    a = select_frames(short_video, q, selector=sel, options=opts, method="tspo+nms")
    b = select_frames(short_video, q, selector=back, options=opts, method="tspo+nms")
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    # options reach the filter agent's scores (its option channel is not zero here) ...
    assert not np.allclose(select_frames(short_video, q, selector=sel).scores, a.scores)
    # ... and an unknown family is refused by name
    cfg["agent"]["family"] = "transformer"
    (tmp_path / "sel" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SelectorConfigError, match="agent family 'transformer' is unknown"):
        load_selector_agent(tmp_path / "sel")


def test_registry_builds_every_family_from_its_config():
    assert set(AGENT_FAMILIES) == {"paper", "filter"}
    assert type(build_agent({"dim": DIM, "window": 12, "heads": 8})) is TemporalAgent  # old configs: the paper's
    f = build_agent({"dim": DIM, "window": 12, "heads": 8, "family": "filter", "filter_radius": 2})
    assert type(f) is FilterAgent and f.filter_radius == 2
    with pytest.raises(AgentConfigError, match="does not take"):
        build_agent({"dim": DIM, "window": 12, "heads": 8, "filter_radius": 2})


def test_paper_agent_ignores_options(tiny_encoder, short_video):
    sel = TSPOSelector(encoder=tiny_encoder, cache=False, num_frames=4)
    a = select_frames(short_video, "Which came first?", selector=sel)
    b = select_frames(short_video, "Which came first?", selector=sel, options=["the red circle", "a cat"])
    np.testing.assert_array_equal(a.scores, b.scores)
    with pytest.raises(ValueError, match="options must be a list"):
        select_frames(short_video, "Which came first?", selector=sel, options="the red circle")


def test_nms_rule_values_radius_per_row_and_errors():
    s = torch.tensor([1.0, 0.9, 0.8, 0.1, 0.95, 0.2, 0.3, 0.85])
    assert select_nms(s, 3, 0).tolist() == [0, 1, 4]                  # radius 0: top-k
    assert select_nms(s, 3, 2).tolist() == [0, 4, 7]                  # one pick per peak first
    assert select_nms(s, 4, 3).tolist() == [0, 1, 4, 7]               # fewer peaks than k: best of the rest
    flat = torch.ones(10)                                             # a still shot: ties give one peak
    assert select_nms(flat, 2, 3).tolist() == [0, 4]
    rows = torch.stack([s, s])
    assert select_nms(rows, 3, torch.tensor([0, 2])).tolist() == [[0, 1, 4], [0, 4, 7]]
    assert get_method("clip+nms").pick(s, 8, 3).tolist() == [0, 1, 4]  # fixed default radius 3: 7 is near 4
    with pytest.raises(ValueError, match="radius must be >= 0"):
        select_nms(s, 3, -1)
    with pytest.raises(ValueError, match="radius must be an int"):
        select_nms(rows, 3, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="larger than the number of candidates"):
        select_nms(s, 9, 1)


def test_tspo_nms_takes_the_filter_agents_radius():
    agent = FilterAgent(dim=DIM, heads=8, nms_radius=2)
    text = torch.randn(2, DIM)
    with torch.no_grad():
        agent.set_head.weight.zero_()
        agent.set_head.bias.fill_(1.0)                               # every question: suppress
    m = get_method("tspo+nms")
    assert m.set_radius(agent, text).tolist() == [2, 2]
    assert get_method("tspo").set_radius(agent, text) is None         # top-k is not set-aware
    assert m.set_radius(TemporalAgent(dim=DIM, heads=8), text) is None  # the paper's agent: fixed radius


def test_set_rule_targets_follow_the_coverage_rules():
    assert set_rule_target(COVERAGE_RULES["motion"], 1) == 0.0
    assert set_rule_target(COVERAGE_RULES["order"], 2) == 1.0
    assert set_rule_target(COVERAGE_RULES["count"], 3) == 1.0
    assert set_rule_target(COVERAGE_RULES["count"], 1) is None
    assert set_rule_target(COVERAGE_RULES["colour"], 1) is None and set_rule_target(None, 0) is None
    with pytest.raises(ValueError, match="coverage must be"):
        set_rule_target({"rule": "most"}, 2)
    samples = [Sample("a", "v.mp4", "q", ["x"], "A", extra={"coverage": COVERAGE_RULES[kind],
                                                             "evidence_groups_s": [[[0, 1]]] * groups})
               for kind, groups in (("motion", 1), ("order", 2), ("colour", 1))]
    target, weight = set_rule_targets(samples)
    assert target.tolist() == [0.0, 1.0, 0.0] and weight.tolist() == [1.0, 1.0, 0.0]
    logits = torch.tensor([-3.0, 3.0, 50.0], requires_grad=True)
    loss = set_rule_loss(logits, target, weight)
    assert 0 < float(loss.detach()) < 0.05                                     # both labelled rows right; row 3 ignored
    loss.backward()
    assert logits.grad[2] == 0


def test_set_head_loss_weights_only_the_rows_asked_for_and_skips_agents_without_a_head():
    """The one set-head loss of the warm start and span_fit: rows outside ``rows`` add nothing."""
    samples = [Sample("a", "v.mp4", "q", ["x"], "A", extra={"coverage": COVERAGE_RULES[kind],
                                                             "evidence_groups_s": [[[0, 1]]] * groups})
               for kind, groups in (("motion", 1), ("order", 2))]
    agent = FilterAgent(dim=DIM)
    with torch.no_grad():
        agent.set_head.weight.zero_()
        agent.set_head.bias.fill_(2.0)                       # suppress everywhere: right for order, wrong for motion
    text = torch.randn(2, DIM)
    both = set_head_loss(agent, text, samples)
    only_order = set_head_loss(agent, text, samples, torch.tensor([False, True]))
    assert float(only_order) == pytest.approx(float(F.softplus(torch.tensor(-2.0))))    # BCE of logit 2, target 1
    assert float(both) == pytest.approx((float(F.softplus(torch.tensor(2.0))) + float(only_order)) / 2)
    assert set_head_loss(TemporalAgent(dim=DIM), text, samples) is None


def test_options_flow_through_collate():
    rows = [torch.ones(4, DIM), torch.zeros(0, DIM), 2 * torch.ones(2, DIM)]
    options, mask = pad_options(rows)
    assert options.shape == (3, 4, DIM) and mask.tolist() == [[True] * 4, [False] * 4, [True, True, False, False]]
    items = [{"features": torch.randn(5, DIM), "text": torch.randn(DIM), "timestamps": torch.arange(5.0),
              "target_mask": torch.zeros(5, dtype=torch.bool), "index": i, "sample": None, "options": r}
             for i, r in enumerate(rows)]
    batch = collate(items)
    torch.testing.assert_close(batch["options"], options)
    assert torch.equal(batch["option_mask"], mask)


def test_agent_options_validate_the_family():
    assert AgentOptions(family="filter", filter_radius=4).agent_config(DIM) == {
        "dim": DIM, "window": 12, "heads": 8, "family": "filter", "filter_radius": 4}
    assert AgentOptions().agent_config(DIM) == {"dim": DIM, "window": 12, "heads": 8}
    with pytest.raises(TrainingConfigError, match="model.agent_family must be one of"):
        AgentOptions(family="lstm")
    with pytest.raises(TrainingConfigError, match="belongs to the filter agent"):
        AgentOptions(filter_radius=4)
    with pytest.raises(TrainingConfigError, match="model.nms_radius must be an int >= 1"):
        AgentOptions(family="filter", nms_radius=0)


def _after_world(n: int, T: int, g: torch.Generator):
    """Videos of 4-frame events with random content; half the questions ask for the cue's event ("match"),
    half for the event right after it ("after"). The kind is a fixed direction added to the question."""
    events = T // 4
    content = F.normalize(torch.randn(n, events, DIM, generator=g), dim=-1)
    feats = content.repeat_interleave(4, dim=1) + 0.05 * torch.randn(n, T, DIM, generator=g)
    cue = torch.randint(1, events - 1, (n,), generator=g)
    after = torch.arange(n) % 2 == 1
    kind = F.normalize(torch.randn(2, DIM, generator=torch.Generator().manual_seed(99)), dim=-1)
    text = content[torch.arange(n), cue] + kind[after.long()]
    target_event = cue + after.long()
    target = (torch.arange(T)[None] // 4) == target_event[:, None]   # [n, T]
    return feats, text, target, after


def test_filter_agent_learns_after_where_similarity_cannot():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    agent = FilterAgent(dim=DIM, heads=8, filter_radius=6)
    feats, text, target, _ = _after_world(256, 48, g)
    test_feats, test_text, test_target, test_after = _after_world(200, 48, g)

    def hit_rate() -> torch.Tensor:  # top-1 inside the asked-for event, per question
        with torch.no_grad():
            best = agent(test_feats, test_text).argmax(-1)
        return test_target[torch.arange(len(best)), best]

    before = hit_rate()
    assert before[~test_after].float().mean() > 0.9 and before[test_after].float().mean() < 0.1
    agent.requires_grad_(False).filter.requires_grad_(True)         # the paper part frozen: only w(q) learns
    opt = torch.optim.Adam(agent.filter.parameters(), lr=1e-2)
    for _ in range(40):
        idx = torch.randint(0, 256, (32,), generator=g)
        logp = torch.log_softmax(agent(feats[idx], text[idx]) / 0.1, -1)
        loss = -(logp * target[idx]).sum(-1).div(target[idx].sum(-1)).mean()   # listwise: mass on the target
        opt.zero_grad()
        loss.backward()
        opt.step()
    after_training = hit_rate()
    assert after_training[test_after].float().mean() > 0.9
    assert after_training[~test_after].float().mean() > 0.9


def test_standardise_is_per_row():
    x = torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    z = standardise(x)
    torch.testing.assert_close(z[0], torch.tensor([-1.2247, 0.0, 1.2247]), atol=1e-4, rtol=0)
    assert torch.equal(z[1], torch.zeros(3))


def test_training_builds_the_filter_family_and_feeds_it_the_options(tmp_path_factory, monkeypatch):
    from training_helpers import small_datamodule, trainer

    from tspo.training import TSPOModule

    seen = []
    forward = FilterAgent.forward

    def spy(self, features, text, options=None, option_mask=None):
        seen.append(None if options is None else (tuple(options.shape), int(option_mask.sum())))
        return forward(self, features, text, options, option_mask)

    monkeypatch.setattr(FilterAgent, "forward", spy)
    paper_dir = tmp_path_factory.mktemp("paper")
    TSPOSelector(encoder="tiny-random", agent=_randomised(TemporalAgent(dim=64), scale=0.05),
                 cache=False).save_pretrained(paper_dir)
    # the paper's 0/1 reward: its guesses give two steps non-zero advantages (the soft default gives a group
    # with no covering selection none, which is its point)
    m = TSPOModule(agent_family="filter", filter_radius=3, init_from=str(paper_dir), answer_reward="hard")
    assert type(m.agent) is FilterAgent and m.agent.config["filter_radius"] == 3
    assert torch.count_nonzero(m.agent.filter.weight) == 0 and torch.count_nonzero(m.agent.q.weight) > 0
    trainer(2).fit(m, small_datamodule(tmp_path_factory.getbasetemp() / "training_data"))
    assert torch.count_nonzero(m.agent.filter.weight) > 0                # the filter gets gradients
    assert seen and all(s is not None and s[1] > 0 for s in seen)       # every batch carried its options
    with pytest.raises(TrainingConfigError, match="belongs to the filter agent"):
        TSPOModule(filter_radius=3)


def test_cli_select_and_export_take_a_filter_selector(tmp_path, tiny_encoder, short_video, capsys):
    from tspo.cli import main as tspo_main

    agent = _randomised(FilterAgent(dim=tiny_encoder.dim), scale=0.05)
    TSPOSelector(encoder=tiny_encoder, agent=agent, cache=False).save_pretrained(tmp_path / "sel")
    args = ["select", str(short_video), "Which came first, the red circle or the blue square?", "-k", "4",
            "--selector", str(tmp_path / "sel"), "--method", "tspo+nms", "--json"]
    assert tspo_main([*args, "--option", "the red circle", "--option", "the blue square"]) == 0
    with_options = json.loads(capsys.readouterr().out)
    expected = select_frames(short_video, args[2], 4, selector=TSPOSelector.from_pretrained(tmp_path / "sel"),
                             method="tspo+nms", options=["the red circle", "the blue square"])
    assert with_options["indices"] == expected.indices.tolist()
    assert tspo_main([*args, "--option", " "]) == 2
    assert "--option must be a non-empty text" in capsys.readouterr().err
    assert tspo_main(["export", str(tmp_path / "sel"), "--format", "onnx", "--out", str(tmp_path / "a.onnx")]) == 0
    assert "round-trip max |diff|" in capsys.readouterr().out


def test_masked_standardise_uses_real_frames_only_and_zeros_padding():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0, -7.0]])
    mask = torch.tensor([[True, True, True, False, False]])
    z = standardise(x, mask=mask)
    torch.testing.assert_close(z[:, :3], standardise(x[:, :3]))
    assert torch.equal(z[:, 3:], torch.zeros(1, 2))


def test_padded_batch_scores_real_frames_like_each_unpadded_video():
    g = torch.Generator().manual_seed(3)
    agent = FilterAgent(dim=DIM, filter_radius=3)
    with torch.no_grad():   # a trained filter and set head; the paper part at its start (S = 2 cos)
        agent.filter.weight.copy_(torch.randn(agent.filter.weight.shape, generator=g) * 0.3)
        agent.filter.bias.copy_(torch.randn(agent.filter.bias.shape, generator=g) * 0.3)
    agent.eval()
    lengths = [9, 4, 6]
    videos = [torch.randn(n, DIM, generator=g) for n in lengths]
    text = torch.randn(3, DIM, generator=g)
    options = torch.randn(3, 2, DIM, generator=g)
    feats = torch.nn.utils.rnn.pad_sequence(videos, batch_first=True)
    frame_mask = torch.arange(9)[None] < torch.tensor(lengths)[:, None]
    with torch.no_grad():
        batched = agent(feats, text, options, frame_mask=frame_mask)
        for b, v in enumerate(videos):
            torch.testing.assert_close(batched[b, : lengths[b]], agent(v, text[b], options[b]), atol=1e-5, rtol=0)
            assert torch.isinf(batched[b, lengths[b]:]).all() and (batched[b, lengths[b]:] < 0).all()
        torch.testing.assert_close(agent(feats, text, options, frame_mask=torch.ones(3, 9, dtype=torch.bool)),
                                   agent(feats, text, options), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="frame_mask"):
        agent(feats, text, frame_mask=frame_mask[:, :5])
