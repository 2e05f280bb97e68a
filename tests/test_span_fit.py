"""tspo.training.span_fit: group masks of needles, padding, options, and a fit that lowers the loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tspo.agents import FilterAgent, TemporalAgent
from tspo.manifest import Sample
from tspo.training.span_fit import (
    SpanFit,
    SpanFitError,
    SpanPool,
    fit_set_head,
    needle_groups,
    pad_needles,
    padded_scores,
    span_fit,
    span_loss,
)

DIM = 16


class TinyWorld:
    """FeatureDataset-shaped items: needles of 10-16 one-second frames, each made of 2-frame events;
    a count question's evidence is every frame of its object (2 appearances = 2 groups), the others
    one event (1 group); options on half of them."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        objects = F.normalize(torch.randn(4, DIM, generator=g), dim=-1)
        self.items = []
        for i in range(n):
            T = 10 + 2 * int(torch.randint(0, 4, (1,), generator=g))
            events = torch.randint(0, 4, (T // 2,), generator=g)
            obj = int(events[0]) if i % 2 else int(events[-1])
            feats = objects[events].repeat_interleave(2, 0) + 0.3 * torch.randn(T, DIM, generator=g)
            where = (events == obj).nonzero().flatten().tolist()
            groups = [[[2.0 * e, 2.0 * e + 2.0]] for e in where]
            count = len(groups) >= 2
            extra = {"qa_kind": "count" if count else "colour", "evidence_groups_s": groups,
                     "coverage": {"rule": "all" if count else "any", "min_picks": 1}}
            sample = Sample(id=f"n{i}", video="v.mp4", question="q?", options=["a", "b"], answer="a",
                            evidence_spans_s=[s for grp in groups for s in grp], extra=extra)
            options = objects[:2] if i % 2 else torch.zeros(0, DIM)
            self.items.append({"features": feats, "text": objects[obj] + 0.05 * torch.randn(DIM, generator=g),
                               "timestamps": torch.arange(T, dtype=torch.float64), "sample": sample,
                               "options": options})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def test_needle_groups_mark_each_evidence_group():
    item = TinyWorld(1).items[0]
    groups = needle_groups(item)
    T = item["features"].shape[0]
    assert groups.dtype == torch.bool and groups.shape == (len(item["sample"].extra["evidence_groups_s"]), T)
    for g, [[start, end]] in zip(groups, item["sample"].extra["evidence_groups_s"]):
        assert g.nonzero().flatten().tolist() == list(range(int(start), int(end)))


def test_pad_needles_pads_features_options_and_groups_with_masks():
    world = TinyWorld(4)
    items = world.items[:3]
    batch = pad_needles(items, [needle_groups(it) for it in items])
    T = max(it["features"].shape[0] for it in items)
    assert batch["features"].shape == (3, T, DIM) and batch["text"].shape == (3, DIM)
    assert batch["frame_mask"].sum(1).tolist() == [it["features"].shape[0] for it in items]
    assert batch["options"].shape == (3, 2, DIM) and batch["option_mask"].sum(1).tolist() == [0, 2, 0]
    assert batch["groups"].shape[0] == 3 and batch["groups"].shape[2] == T
    assert not (batch["groups"] & ~batch["frame_mask"][:, None]).any()      # no group on a padded frame
    assert pad_needles([world.items[0]])["options"] is None
    with pytest.raises(SpanFitError, match="one per item"):
        pad_needles(items, [needle_groups(items[0])])
    with pytest.raises(SpanFitError, match="at least one"):
        pad_needles([])


@pytest.mark.parametrize("kw, match", [({"steps": 0}, "steps"), ({"batch_size": 1.5}, "batch_size"),
                                       ({"lr": 0}, "lr"), ({"tau": -1}, "tau"), ({"spread": -0.1}, "spread"),
                                       ({"base": "no"}, "base"), ({"loss": "hinge"}, "loss")])
def test_bad_options_name_the_field(kw, match):
    with pytest.raises(SpanFitError, match=match):
        SpanFit(**kw)


def test_base_false_needs_a_filter_agent_and_freezes_the_paper_part():
    world = TinyWorld(8)
    with pytest.raises(SpanFitError, match="FilterAgent"):
        span_fit(TemporalAgent(dim=DIM, heads=4), world, SpanFit(steps=1, base=False, progress=False))
    torch.manual_seed(0)
    agent = FilterAgent(dim=DIM, heads=4, filter_radius=2)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    span_fit(agent, world, SpanFit(steps=3, batch_size=4, lr=1e-2, base=False, progress=False))
    changed = {k for k, v in agent.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(("filter.", "set_head.")) for k in changed)


def test_no_supervised_sample_is_refused():
    world = TinyWorld(2)
    for it in world.items:
        it["sample"].extra["evidence_groups_s"], it["sample"].evidence_spans_s = [], []
    with pytest.raises(SpanFitError, match="evidence"):
        span_fit(FilterAgent(dim=DIM, heads=4), world, SpanFit(steps=1, progress=False))


def _fit(seed: int, steps: int = 30) -> tuple[FilterAgent, list[float]]:
    torch.manual_seed(0)
    agent = FilterAgent(dim=DIM, heads=4, filter_radius=2)
    losses = span_fit(agent, TinyWorld(24), SpanFit(steps=steps, batch_size=8, lr=1e-2, progress=False),
                      torch.Generator().manual_seed(seed))
    return agent, losses


def test_fit_lowers_the_loss_on_a_tiny_world_and_trains_the_set_head():
    world = TinyWorld(24)
    agent = FilterAgent(dim=DIM, heads=4, filter_radius=2)
    items = world.items
    batch = pad_needles(items, [needle_groups(it) for it in items])
    opts = SpanFit(progress=False)
    with torch.no_grad():
        start, _ = span_loss(agent, batch, [it["sample"] for it in items], opts)
    agent, losses = _fit(0, steps=25)
    with torch.no_grad():
        end, parts = span_loss(agent, batch, [it["sample"] for it in items], opts)
    assert len(losses) == 25 and float(end) < 0.8 * float(start)
    assert set(parts) == {"evidence", "set"} and parts["set"] < 0.69          # below the untrained head's log 2


def test_fit_is_deterministic_given_the_seed():
    a, la = _fit(1, steps=5)
    b, lb = _fit(1, steps=5)
    _, lc = _fit(2, steps=5)
    assert la == lb and la != lc
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_fit_set_head_fits_the_set_rule_full_batch_and_touches_nothing_else():
    world = TinyWorld(24)
    agent = FilterAgent(dim=DIM, heads=4, filter_radius=2)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    text = torch.stack([it["text"] for it in world.items])
    samples = [it["sample"] for it in world.items]
    loss = fit_set_head(agent, text, samples, steps=50)
    assert loss < 0.1
    changed = {k for k, v in agent.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"set_head.weight", "set_head.bias"}
    with pytest.raises(SpanFitError, match="one row per sample"):
        fit_set_head(agent, text[:3], samples)
    with pytest.raises(SpanFitError, match="set head"):
        fit_set_head(TemporalAgent(dim=DIM, heads=4), text, samples)
    with pytest.raises(SpanFitError, match="head_steps"):
        SpanFit(head_steps=-1)


def test_learn_scale_trains_a_loss_side_scale_and_stays_deterministic():
    torch.manual_seed(0)
    agent = FilterAgent(dim=DIM, heads=4, filter_radius=2)
    opts = SpanFit(steps=5, batch_size=8, lr=1e-2, learn_scale=True, progress=False)
    losses = span_fit(agent, TinyWorld(24), opts, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    again = span_fit(FilterAgent(dim=DIM, heads=4, filter_radius=2), TinyWorld(24), opts,
                     torch.Generator().manual_seed(0))
    assert losses == again and len(losses) == 5
    assert set(agent.state_dict()) == set(FilterAgent(dim=DIM, heads=4, filter_radius=2).state_dict())
    items = TinyWorld(4).items
    batch = pad_needles(items, [needle_groups(it) for it in items])
    samples = [it["sample"] for it in items]
    plain, _ = span_loss(agent, batch, samples, SpanFit(spread=0.0, progress=False))
    scaled, _ = span_loss(agent, batch, samples, SpanFit(spread=0.0, tau=0.2, progress=False),
                          torch.log(torch.tensor(2.0)))
    assert float(scaled.detach()) == pytest.approx(float(plain.detach()), rel=1e-5)   # 2 S at tau 0.2 = S at tau 0.1


def test_multi_pick_questions_get_one_group_per_evidence_frame():
    item = TinyWorld(1).items[0]
    item["sample"].extra["coverage"] = {"rule": "any", "min_picks": 2}
    plain = needle_groups(item)
    split = needle_groups(item, multi_pick_frames=True)
    assert split.shape == (int(plain.any(0).sum()), plain.shape[1])
    assert torch.equal(split.sum(0).bool(), plain.any(0)) and (split.sum(1) == 1).all()
    item["sample"].extra["coverage"] = {"rule": "all", "min_picks": 1}
    assert torch.equal(needle_groups(item, multi_pick_frames=True), plain)


def test_span_pool_draws_padded_batches_and_refuses_what_it_cannot_use():
    """SpanPool draws usable needles with a generator (same seed, same batch); a pool with nothing usable
    (``keep`` rejects every needle) and an agent that reads no frame mask are refused, naming the fix."""
    world = TinyWorld(6)
    pool = SpanPool(world.items)
    (a, sa), (b, sb) = (pool.draw(4, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a["features"], b["features"]) and [s.id for s in sa] == [s.id for s in sb]
    assert a["groups"].shape[0] == 4 and a["frame_mask"].shape == a["features"].shape[:2]
    assert torch.isnan(a["timestamps"][~a["frame_mask"]]).all() and not torch.isnan(a["timestamps"][a["frame_mask"]]).any()
    with pytest.raises(SpanFitError, match="evidence_spans_s"):
        SpanPool(world.items, keep=lambda sample: False)
    with pytest.raises(SpanFitError, match="filter family"):
        padded_scores(TemporalAgent(dim=DIM), a)
