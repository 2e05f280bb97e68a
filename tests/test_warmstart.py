"""Training side of the question-conditioned sampler: the span warm start, the soft answer reward, KL to the warm-started agent,
and the temperature relative to the scores' spread."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import pytest
import torch
from training_helpers import MetricRecorder, small_datamodule, trainer

from tspo.agents import TemporalAgent
from tspo.manifest import Sample
from tspo.objectives.grpo import ObjectiveInputError, relative_logits, score_answers
from tspo.objectives.warmstart import evidence_group_loss, evidence_listwise_loss, greedy_in_evidence
from tspo.rewards import OracleAnswer, OracleCache, RewardInputError, SimulatedOracle, soft_accuracy_reward
from tspo.training import TrainingConfigError, TSPOModule
from tspo.training.options import WarmStartOptions
from tspo.training.warmstart_step import batch_group_masks, evidence_groups, evidence_mask, group_masks


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "training_data"


# -- the listwise loss --------------------------------------------------------------------------
def test_listwise_loss_is_cross_entropy_against_uniform_evidence():
    scores = torch.tensor([[0.0, 1.0, 2.0, 3.0], [5.0, 0.0, 0.0, 0.0]])
    inside = torch.tensor([[False, True, True, False], [False, False, False, False]])
    logp = torch.log_softmax(scores[0], -1)
    want = -(logp[1] + logp[2]) / 2                       # the second row has no evidence: left out
    assert evidence_listwise_loss(scores, inside) == pytest.approx(float(want))


def test_listwise_loss_minimum_is_log_of_the_evidence_size():
    inside = torch.tensor([[True, True, False, False, False]])
    perfect = torch.tensor([[50.0, 50.0, 0.0, 0.0, 0.0]])
    assert evidence_listwise_loss(perfect, inside) == pytest.approx(math.log(2), abs=1e-6)
    assert evidence_listwise_loss(-perfect, inside) > 10


def test_listwise_loss_without_any_evidence_is_zero_but_keeps_the_graph():
    scores = torch.randn(2, 6, requires_grad=True)
    loss = evidence_listwise_loss(scores, torch.zeros(2, 6, dtype=torch.bool))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(scores.grad, torch.zeros(2, 6))


def test_listwise_loss_and_greedy_share_refuse_mismatched_shapes():
    with pytest.raises(ObjectiveInputError, match="scores"):
        evidence_listwise_loss(torch.zeros(2, 5), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ObjectiveInputError, match="inside"):
        greedy_in_evidence(torch.zeros(2, 5), torch.zeros(5, dtype=torch.bool), 2)


def test_greedy_in_evidence_is_the_share_of_top_k_picks_inside():
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    inside = torch.tensor([[True, False, True, True]])
    assert greedy_in_evidence(scores, inside, 2).tolist() == [0.5]
    assert greedy_in_evidence(scores, inside, 9).tolist() == [0.75]   # k clipped to T


def _tensor_world(num: int, t: int = 32, d: int = 16, seed: int = 0):
    """Four questions; each question's evidence (4 neighbouring frames at a random place) carries a fixed
    rotation of its text vector, so it does not look like the question's words (cosine ranking ~chance)."""
    fixed = torch.Generator().manual_seed(123)
    rotation = torch.linalg.qr(torch.randn(d, d, generator=fixed))[0]
    questions = torch.nn.functional.normalize(torch.randn(4, d, generator=fixed), dim=-1)
    g = torch.Generator().manual_seed(seed)
    text = questions[torch.randint(0, 4, (num,), generator=g)]
    inside = torch.zeros(num, t, dtype=torch.bool)
    start = torch.randint(0, t - 4, (num,), generator=g)
    inside[torch.arange(num)[:, None], start[:, None] + torch.arange(4)] = True
    feats = torch.randn(num, t, d, generator=g) + 3.0 * inside[..., None] * (text @ rotation)[:, None, :]
    return feats, text, inside


def test_warm_start_raises_evidence_coverage_on_a_small_tensor_world():
    """The paper's agent, trained on the listwise loss alone, puts its greedy picks into the evidence
    of held-out needles far more often than its untrained (cosine) ranking does."""
    torch.manual_seed(0)
    agent = TemporalAgent(dim=16, window=4, heads=2)
    feats, text, inside = _tensor_world(64)
    test_f, test_t, test_in = _tensor_world(64, seed=1)
    with torch.no_grad():
        before = float(greedy_in_evidence(agent(test_f, test_t), test_in, 4).mean())
    opt = torch.optim.Adam(agent.parameters(), lr=1e-2)
    for step in range(40):
        rows = torch.arange(16) + (step * 16) % 64
        loss = evidence_listwise_loss(agent(feats[rows], text[rows]), inside[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(greedy_in_evidence(agent(test_f, test_t), test_in, 4).mean())
    assert before < 0.15 and after > before + 0.2, (before, after)


# -- which samples the warm start supervises ---------------------------------------------------
def _sample(kind: str | None, evidence):
    return Sample(id=f"s-{kind}", video="v.mp4", question="q?", options=["a", "b", "c", "d"], answer="A",
                  kind="needle", target_spans_s=[[0.0, 10.0]], evidence_spans_s=evidence, duration_s=10.0,
                  extra={} if kind is None else {"qa_kind": kind})


def test_evidence_mask_keeps_only_the_chosen_kinds_with_spans_and_counts_the_rest():
    samples = [_sample("colour", [[2.0, 4.0]]), _sample("after", [[5.0, 6.0]]), _sample("shape", None),
               _sample(None, [[0.0, 1.0]])]
    batch = {"samples": samples, "timestamps": torch.arange(10, dtype=torch.float64).expand(4, 10)}
    mask, skipped = evidence_mask(batch, WarmStartOptions(5, ("colour", "shape")))
    assert mask[0].nonzero().flatten().tolist() == [2, 3] and not mask[1:].any() and skipped == 3
    mask, skipped = evidence_mask(batch, WarmStartOptions(5))            # all kinds: only the one without spans
    assert mask[1].nonzero().flatten().tolist() == [5] and mask[3].tolist()[0] and skipped == 1


# -- option values and errors -------------------------------------------------------------------
@pytest.mark.parametrize(("kw", "match"), [
    ({"warmstart_steps": -1}, "warmstart_steps"),
    ({"warmstart_steps": 1.5}, "warmstart_steps"),
    ({"warmstart_steps": 5, "warmstart_kinds": ["colour", "smell"]}, r"unknown question kinds \['smell'\]"),
    ({"warmstart_steps": 5, "warmstart_kinds": "colour"}, "warmstart_kinds must be a non-empty list"),
    ({"warmstart_steps": 5, "warmstart_kinds": []}, "warmstart_kinds must be a non-empty list"),
    ({"warmstart_kinds": ["colour"]}, "warmstart_steps > 0"),
    ({"warmstart_steps": 5, "zoom": {}}, "warmstart_steps precedes single-stage GRPO"),
    ({"warmstart_steps": 5, "replay_ratio": 1}, "warmstart_steps precedes single-stage GRPO"),
    ({"answer_reward": "probability"}, "answer_reward must be 'hard'"),
    ({"answer_reward": "soft", "replay_ratio": 1}, "answer_reward soft"),
    ({"tau_relative": "yes"}, "tau_relative must be true or false"),
    ({"tau_relative": True, "zoom": {}}, "tau_relative shapes single-stage"),
    ({"rl_trainable": "paper"}, "rl_trainable must be 'all'"),
    ({"rl_trainable": "filter"}, "set model.agent_family: filter"),
    ({"rl_trainable": "filter", "agent_family": "filter", "zoom": {}}, "rl_trainable and model.rl_lr"),
    ({"rl_lr": 0.0}, "rl_lr must be a number > 0"),
    ({"rl_lr": "fast"}, "rl_lr must be a number > 0"),
    ({"rl_lr": 1e-3, "replay_ratio": 1}, "rl_trainable and model.rl_lr"),
])
def test_bad_options_raise_naming_the_option(kw, match):
    with pytest.raises(TrainingConfigError, match=match):
        TSPOModule(**kw)


def test_new_options_are_off_by_default():
    m = TSPOModule()
    assert m.warmstart.steps == 0 and m.warmstart.kinds is None
    assert m.grpo.tau_relative is False
    assert m.grpo.rl_trainable == "all" and m.grpo.rl_lr is None


def test_reward_and_kl_defaults_come_from_their_owner_per_kind_of_training():
    from tspo.settings import PAPER_GRPO_RECIPE, SINGLE_STAGE_GRPO_DEFAULTS

    m = TSPOModule()                                  # single-stage GRPO: soft R_A, KL 0.002 to the initial agent
    assert (m.reward_options.answer_reward, m.grpo.kl_beta) == ("soft", 0.002) == tuple(SINGLE_STAGE_GRPO_DEFAULTS.values())
    assert m.ref_agent is not None and m.hparams["answer_reward"] == "soft" and m.hparams["kl_beta"] == 0.002
    replay = TSPOModule(replay_ratio=1)               # pairs rank by the 0/1 reward: the paper's
    assert (replay.reward_options.answer_reward, replay.grpo.kl_beta) == tuple(PAPER_GRPO_RECIPE.values())
    zoom = TSPOModule(zoom={"coarse_candidates": 32, "num_spans": 2})
    assert (zoom.reward_options.answer_reward, zoom.grpo.kl_beta) == ("hard", 0.0)
    paper = TSPOModule(**PAPER_GRPO_RECIPE)           # the paper's recipe, asked for explicitly
    assert paper.ref_agent is None and paper.hparams["answer_reward"] == "hard"
    with pytest.raises(TrainingConfigError, match="answer_reward soft"):
        TSPOModule(replay_ratio=1, answer_reward="soft")


# -- soft answer reward -------------------------------------------------------------------------
def test_soft_reward_is_the_probability_of_the_right_option():
    assert soft_accuracy_reward({"A": 0.1, "B": 0.7, "C": 0.2}, "b") == pytest.approx(0.7)
    with pytest.raises(RewardInputError, match="answer_reward: hard"):
        soft_accuracy_reward(None, "A")
    with pytest.raises(RewardInputError, match="no probability for the answer 'D'"):
        soft_accuracy_reward({"A": 0.5, "B": 0.5}, "D")
    with pytest.raises(RewardInputError, match="probabilities in"):
        soft_accuracy_reward({"A": 1.5, "B": -0.5}, "A")


def test_soft_reward_of_the_simulated_oracle_is_one_when_covered_else_one_over_n():
    """A lucky guess earns 1 with the 0/1 reward, 1/N with the soft one."""
    sample = _sample("colour", [[2.0, 4.0]])
    oracle = SimulatedOracle(guess="first", confidence=1.0)              # guesses "A", the right letter
    times = np.array([[[2.5, 7.0], [6.0, 7.0]]])                           # covered / not covered
    from tspo.rewards import OracleQuery

    answers = oracle.answer([OracleQuery.for_sample(sample, t) for t in times[0]])
    hard = score_answers([sample], answers, times, w_t=0.0)
    soft = score_answers([sample], answers, times, w_t=0.0, answer_reward="soft")
    assert hard.accuracy.tolist() == [[1.0, 1.0]]
    assert soft.accuracy.tolist() == [[1.0, 0.25]]


def test_soft_reward_scores_unparsed_answers_zero_and_refuses_oracles_without_probabilities():
    sample = _sample("colour", [[2.0, 4.0]])
    times = np.zeros((1, 2, 1))
    got = score_answers([sample], [OracleAnswer(None, raw="?"), OracleAnswer("A", option_probs={"A": 0.6, "B": 0.4})],
                        times, answer_reward="soft")
    assert got.accuracy.tolist() == [[0.0, pytest.approx(0.6)]]
    with pytest.raises(RewardInputError, match="option probabilities"):
        score_answers([sample], [OracleAnswer("A"), OracleAnswer("B")], times, answer_reward="soft")


# -- temperature relative to the score spread ---------------------------------------------------
def test_relative_logits_divide_by_tau_times_the_row_spread():
    scores = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 10.0, 20.0, 30.0], [2.0, 2.0, 2.0, 2.0]])
    got = relative_logits(scores, 0.5)
    torch.testing.assert_close(got[0], got[1])                           # same ranking, any scale: same sampler
    std = scores[0].std()
    torch.testing.assert_close(got[0], (scores[0] - 1.5) / (0.5 * std))
    assert torch.equal(got[2], torch.zeros(4))                           # constant row: uniform, no NaN
    with pytest.raises(ObjectiveInputError, match="tau must be > 0"):
        relative_logits(scores, 0.0)


def test_relative_logits_pass_gradients_through_the_scores_not_the_spread():
    scores = torch.tensor([[0.0, 1.0, 3.0]], requires_grad=True)
    relative_logits(scores, 1.0)[0, 2].backward()
    std = float(scores.detach().std())
    torch.testing.assert_close(scores.grad, torch.tensor([[-1 / 3, -1 / 3, 2 / 3]]) / std)


# -- the stages in a training run ---------------------------------------------------------------
def test_warm_start_then_grpo_in_one_fit(root):
    """The first warmstart_steps are supervised (no oracle call, coverage logged), then GRPO; the KL
    reference is the agent as the warm start left it, and the temperature schedule starts with GRPO."""
    rec = MetricRecorder()
    m = TSPOModule(num_frames=16, group_size=4, warmstart_steps=3, kl_beta=0.1, tau_start=0.3, tau_end=0.1,
                   tau_relative=True, answer_reward="soft")
    snapshot = {}

    class Snap(L.Callback):
        def on_train_batch_end(self, tr, pl_module, *a):
            if tr.global_step == 3:
                snapshot.update({k: v.clone() for k, v in pl_module.agent.state_dict().items()})

    trainer(6, callbacks=[rec, Snap()]).fit(m, small_datamodule(root))
    warm, grpo = rec.rows[:3], rec.rows[3:]
    assert all(r["train/oracle_calls"] == 0 and 0 <= r["train/coverage"] <= 1 and "train/reward" not in r for r in warm)
    assert all(math.isfinite(r["train/loss"]) for r in warm) and warm[-1]["train/loss"] < warm[0]["train/loss"]
    assert grpo[0]["train/oracle_calls"] > 0 and grpo[0]["train/tau"] == pytest.approx(0.3)
    assert m.reference_is_warmstarted
    assert all(torch.equal(snapshot[k], v) for k, v in m.ref_agent.state_dict().items())
    assert any(not torch.equal(snapshot[k], v) for k, v in m.agent.state_dict().items())


def test_rl_trainable_filter_updates_only_the_filter_during_grpo(root):
    """rl_trainable: filter: the warm start trains the whole filter agent; GRPO then moves w(q) only (the
    paper part and the set head keep the warm-started weights), and training stays finite. rl_lr: the
    warm start runs at model.lr, GRPO at rl_lr."""
    rec = MetricRecorder()
    m = TSPOModule(num_frames=16, group_size=4, warmstart_steps=2, agent_family="filter", rl_trainable="filter",
                   warmstart_head_steps=0, tau_start=0.3, tau_end=0.3, tau_relative=True, answer_reward="soft", w_temporal=0.0,
                   logprob="plackett_luce", oracle_args={"confidence": 1.0}, lr=1e-4, rl_lr=3e-3)
    snapshot, lrs = {}, []

    class Snap(L.Callback):
        def on_train_batch_end(self, tr, pl_module, *a):
            lrs.append(tr.optimizers[0].param_groups[0]["lr"])
            if tr.global_step == 2:
                snapshot.update({k: v.clone() for k, v in pl_module.agent.state_dict().items()})

    trainer(8, callbacks=[rec, Snap()]).fit(m, small_datamodule(root))
    moved = {k for k, v in m.agent.state_dict().items() if not torch.equal(snapshot[k], v)}
    assert moved and all(k.startswith("filter.") for k in moved), moved
    assert all(math.isfinite(r["train/loss"]) for r in rec.rows)
    assert [n for n, p in m.agent.named_parameters() if p.requires_grad] == ["filter.weight", "filter.bias"]
    assert lrs == [1e-4] * 2 + [3e-3] * 6


@pytest.mark.parametrize("head_steps", [0, 50])
def test_warm_start_end_fits_the_set_head_full_batch(root, head_steps):
    """When the warm start ends, the filter agent's set head is fitted on every supervised training
    question (L-BFGS): its set-rule loss drops below the minibatch warm start's; warmstart_head_steps: 0
    leaves the head as the warm start left it. The GRPO steps after it do not move the head (no gradient)."""
    from tspo.objectives.set_rule import set_rule_loss, set_rule_targets

    m = TSPOModule(num_frames=16, group_size=4, warmstart_steps=2, agent_family="filter", warmstart_head_steps=head_steps,
                   tau_start=0.3, tau_end=0.3, answer_reward="soft", w_temporal=0.0, logprob="plackett_luce",
                   oracle_args={"confidence": 1.0})
    heads = {}

    class Snap(L.Callback):
        def on_train_batch_end(self, tr, pl_module, *a):
            heads[tr.global_step] = {k: v.clone() for k, v in pl_module.agent.set_head.state_dict().items()}

    dm = small_datamodule(root)
    trainer(4, callbacks=[Snap()]).fit(m, dm)
    data = dm.train_set
    target, weight = set_rule_targets(data.samples)
    assert weight.any(), "the small world has count / order / motion questions"

    def head_loss(state):
        m.agent.set_head.load_state_dict(state)
        with torch.no_grad():
            return float(set_rule_loss(m.agent.set_logit(data.text), target, weight))

    final = {k: v.clone() for k, v in m.agent.set_head.state_dict().items()}
    assert all(torch.equal(heads[4][k], v) for k, v in final.items())      # GRPO leaves the head alone
    assert all(torch.equal(heads[3][k], v) for k, v in heads[4].items())
    assert m.set_head_fitted is bool(head_steps)
    if head_steps:
        assert head_loss(final) < head_loss(heads[2]) - 1e-3
    else:
        assert all(torch.equal(heads[2][k], v) for k, v in final.items())


def test_warm_start_skips_samples_of_other_kinds_and_counts_them(root):
    """Restricted to shape questions, every other sample of a warm-start batch is skipped and counted."""
    kinds = []

    class Kinds(L.Callback):
        def on_train_batch_end(self, tr, pl_module, outputs, batch, batch_idx):
            kinds.extend(s.extra.get("qa_kind") for s in batch["samples"])

    rec = MetricRecorder()
    m = TSPOModule(num_frames=16, group_size=4, warmstart_steps=6, warmstart_kinds=["shape"])
    trainer(6, callbacks=[rec, Kinds()]).fit(m, small_datamodule(root))
    others = [k != "shape" for k in kinds]
    assert m.warmstart_skipped == sum(others) and [r["train/warmstart_skipped"] for r in rec.rows] == \
        [float(x) for x in np.cumsum(others)]


def test_warm_start_without_any_supervised_sample_is_refused_before_the_first_step(root, tmp_path):
    """A manifest without evidence spans: the warm start would learn nothing, so the run stops at once."""
    from training_helpers import small_synth

    from tspo.data_synth import load_manifest, write_manifest
    from tspo.training import TSPODataModule

    small_datamodule(root).prepare_data()
    samples = load_manifest(small_synth(root).paths()[0])[:8]
    for s in samples:
        s.evidence_spans_s = None
    write_manifest(tmp_path / "no_spans.jsonl", samples)
    dm = TSPODataModule(train_manifest=str(tmp_path / "no_spans.jsonl"), feature_cache=str(root / "features"),
                        progress=False)
    with pytest.raises(TrainingConfigError, match=r"none of the 8 training samples has evidence spans"):
        trainer(2).fit(TSPOModule(num_frames=16, group_size=4, warmstart_steps=2), dm)


def test_filter_agent_set_head_is_trained_by_the_warm_start_on_supervised_rows_only():
    """The filter agent's question-dependent set rule gets its supervised loss in the warm start (motion:
    keep top-k; several evidence groups under an "all" rule: suppress); the paper agent has no set head,
    and a row without span supervision (its kind left out by warmstart_kinds) adds no set-head loss."""
    from tspo.agents.filter import FilterAgent
    from tspo.objectives.set_rule import set_rule_loss
    from tspo.training.context import StepContext
    from tspo.training.warmstart_step import warmstart_step

    torch.manual_seed(0)
    base = TemporalAgent(dim=16, window=4, heads=2)
    headed = FilterAgent(dim=16, window=4, heads=2)
    headed.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        headed.set_head.weight.normal_()
    motion = _sample("motion", [[2.0, 4.0]])
    motion.extra.update(coverage={"rule": "any", "min_picks": 2}, evidence_groups_s=[[[2.0, 4.0]]])
    count = _sample("count", [[1.0, 2.0], [6.0, 7.0]])
    count.extra.update(coverage={"rule": "all", "min_picks": 1}, evidence_groups_s=[[[1.0, 2.0]], [[6.0, 7.0]]])
    text = torch.randn(2, 16)
    batch = {"features": torch.randn(2, 10, 16), "text": text, "samples": [motion, count],
             "timestamps": torch.arange(10, dtype=torch.float64).expand(2, 10)}
    m = TSPOModule(encoder="tiny-random", num_frames=4, warmstart_steps=1)

    def step(agent, kinds=None):
        ctx = StepContext(agent=agent, policy=m.policy, oracle=None, generator=torch.Generator(), tau=0.1,
                          device=torch.device("cpu"), grpo=m.grpo, reward=m.reward_options)
        return warmstart_step(ctx, WarmStartOptions(1, kinds), batch)

    plain, with_head = step(base), step(headed)
    want = set_rule_loss(headed.set_logit(text), torch.tensor([0.0, 1.0]), torch.ones(2))
    assert float(with_head.metrics["train/warmstart_aux"]) == pytest.approx(float(want), rel=1e-5)
    assert "train/warmstart_aux" not in plain.metrics
    only_motion = step(headed, ("motion",))
    want = set_rule_loss(headed.set_logit(text), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]))
    assert float(only_motion.metrics["train/warmstart_aux"]) == pytest.approx(float(want), rel=1e-5)


QUESTION_CONFIGS = ("question_warmstart.yaml", "experiments/question_oracle_rl.yaml")


@pytest.mark.parametrize("name", QUESTION_CONFIGS)
def test_yaml_example_warm_starts_then_runs_grpo(tmp_path, name):
    """The question-world example configs run as written, on a smaller question world."""
    from pathlib import Path

    import yaml

    from tspo.cli.train import main as train_main
    from tspo.selection.selector import TSPOSelector

    config = Path(__file__).resolve().parents[1] / "examples" / "configs" / name
    override = tmp_path / "small.yaml"
    override.write_text(yaml.safe_dump({
        "trainer": {"max_steps": 4, "default_root_dir": str(tmp_path / "run"), "enable_progress_bar": False},
        "model": {"warmstart_steps": 2},
        "data": {"synth": {"num_train": 12, "num_val": 7, "train_targets": 8, "val_targets": 7, "confusers": 2, "confuser_seconds": [30, 40], "target_seconds": [16, 24],
                           "min_minutes": 1.0, "max_minutes": 1.5, "out_dir": str(tmp_path / "synth")},
                 "feature_cache": str(tmp_path / "features"), "progress": False},
        "export": {"dirpath": str(tmp_path / "selector")},
    }))
    assert train_main(["fit", "--config", str(config), "--config", str(override)]) == 0
    sel = TSPOSelector.from_pretrained(tmp_path / "selector", cache=False)
    assert sel.config["trained_with"]["steps"] == 4 and sel.num_frames == 8


@pytest.mark.parametrize("name", QUESTION_CONFIGS)
def test_yaml_example_spells_the_measured_oracle_recipe(name):
    """The example configs carry the GRPO recipe their comments describe, as tspo.settings owns it (the
    demo and bench_warmstart import it; a YAML cannot), so the three cannot drift apart."""
    from pathlib import Path

    import yaml

    from tspo.settings import ORACLE_GRPO_RECIPE

    config = Path(__file__).resolve().parents[1] / "examples" / "configs" / name
    model = yaml.safe_load(config.read_text())["model"]
    assert {k: model.get(k) for k in ORACLE_GRPO_RECIPE} == ORACLE_GRPO_RECIPE
    assert model["kl_beta"] == 0.0          # spelled out: TSPOModule's own default (0.002) is not the recipe's


def test_recommended_yaml_is_the_demos_recipe_at_full_size():
    """examples/configs/question_warmstart.yaml trains what `tspo demo` trains (its QUESTION_RECIPE: the
    filter agent, tspo+nms, per-frame motion groups, rl_lr), with spans on every kind; the recipe that
    leaves the time kinds to the oracle alone is the experiment beside it."""
    from pathlib import Path

    import yaml

    from tspo.cli.demo import QUESTION_RECIPE, DemoConfig

    configs = Path(__file__).resolve().parents[1] / "examples" / "configs"
    recommended = yaml.safe_load((configs / "question_warmstart.yaml").read_text())
    model = recommended["model"]
    assert {k: model.get(k) for k in QUESTION_RECIPE} == QUESTION_RECIPE
    assert "warmstart_kinds" not in model and model["warmstart_steps"] == DemoConfig.warmstart_steps
    assert recommended["trainer"]["accumulate_grad_batches"] == DemoConfig.accumulate_grad_batches
    experiment = yaml.safe_load((configs / "experiments" / "question_oracle_rl.yaml").read_text())["model"]
    assert experiment["warmstart_kinds"] == ["colour", "text", "shape"]


def test_steps_work_with_any_agent_that_maps_features_and_text_to_scores():
    """warmstart_step and grpo_step only call ``agent(features [B, T, D], text [B, D]) -> scores [B, T]``:
    a relative-time filter over the cosine profile (not a TemporalAgent) trains through both."""
    from tspo.training.context import StepContext
    from tspo.training.grpo_step import grpo_step
    from tspo.training.warmstart_step import warmstart_step

    class ProfileFilter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(1, 1, 5, padding=2)

        def forward(self, features, text):
            profile = torch.nn.functional.cosine_similarity(features, text[:, None, :], dim=-1)   # [B, T]
            return profile + self.conv(profile[:, None, :])[:, 0]

    agent = ProfileFilter()
    sample = _sample("colour", [[2.0, 4.0]])
    batch = {"features": torch.randn(1, 10, 16), "text": torch.randn(1, 16), "samples": [sample],
             "timestamps": torch.arange(10, dtype=torch.float64)[None],
             "target_mask": torch.zeros(1, 10, dtype=torch.bool)}
    m = TSPOModule(encoder="tiny-random", num_frames=2, group_size=4, warmstart_steps=1, tau_relative=True,
                   answer_reward="soft", kl_beta=0.1)
    import copy

    ctx = StepContext(agent=agent, policy=m.policy, oracle=OracleCache(SimulatedOracle()),
                      generator=torch.Generator().manual_seed(0),
                      tau=0.3, device=torch.device("cpu"), grpo=m.grpo, reward=m.reward_options,
                      ref_agent=copy.deepcopy(agent).requires_grad_(False))
    for out in (warmstart_step(ctx, m.warmstart, batch), grpo_step(ctx, batch)):
        agent.zero_grad()
        out.loss.backward()
        assert math.isfinite(float(out.loss.detach())) and agent.conv.weight.grad is not None


# -- the per-group loss and its options ---------------------------------------------------------
def test_group_loss_is_the_mean_over_groups_of_minus_log_their_mass():
    scores = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    groups = torch.tensor([[[True, False, False, False], [False, False, True, True]]])
    logp = torch.log_softmax(scores[0] / 0.5, -1)
    want = -(logp[0] + torch.logsumexp(logp[2:], 0)) / 2
    assert float(evidence_group_loss(scores, groups, tau=0.5)) == pytest.approx(float(want), abs=1e-6)


def test_group_loss_wants_every_group_not_just_the_easiest():
    groups = torch.tensor([[[True, False, False, False], [False, False, True, False]]])
    one = torch.tensor([[9.0, 0.0, 0.0, 0.0]])            # all mass on the first appearance
    both = torch.tensor([[9.0, 0.0, 9.0, 0.0]])           # half on each
    assert evidence_group_loss(both, groups) < evidence_group_loss(one, groups)
    assert float(evidence_group_loss(both, groups, tau=0.01)) == pytest.approx(math.log(2), abs=1e-4)


def test_group_loss_skips_empty_groups_and_rows_and_keeps_the_graph():
    scores = torch.randn(2, 5, requires_grad=True)
    groups = torch.zeros(2, 3, 5, dtype=torch.bool)
    loss = evidence_group_loss(scores, groups)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(scores.grad, torch.zeros(2, 5))
    groups[0, 1, 2] = True                                  # row 0 has one group; its padding groups and row 1 drop out
    want = -torch.log_softmax(scores.detach()[0] / 0.1, -1)[2]
    assert float(evidence_group_loss(scores, groups)) == pytest.approx(float(want), rel=1e-5)


def test_group_and_listwise_losses_give_no_nan_on_masked_frames():
    scores = torch.tensor([[1.0, 2.0, float("-inf")]], requires_grad=True)
    inside = torch.tensor([[True, False, False]])
    for loss in (evidence_listwise_loss(scores, inside), evidence_group_loss(scores, inside[:, None])):
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()
        scores.grad = None


def test_group_loss_refuses_bad_shapes_and_tau():
    with pytest.raises(ObjectiveInputError, match="group_masks"):
        evidence_group_loss(torch.zeros(2, 5), torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ObjectiveInputError, match="tau"):
        evidence_group_loss(torch.zeros(1, 5), torch.zeros(1, 1, 5, dtype=torch.bool), tau=0)


@pytest.mark.parametrize("kw, match", [({"loss": "pairwise"}, "warmstart_loss"), ({"tau": 0}, "warmstart_tau"),
                                       ({"tau": "0.1"}, "warmstart_tau"), ({"head_steps": -1}, "warmstart_head_steps"),
                                       ({"head_steps": True}, "warmstart_head_steps")])
def test_warmstart_loss_options_are_validated(kw, match):
    with pytest.raises(TrainingConfigError, match=match):
        WarmStartOptions(steps=1, **kw)


def test_multi_pick_frames_needs_the_group_loss_and_a_bool():
    with pytest.raises(TrainingConfigError, match="warmstart_multi_pick_frames"):
        WarmStartOptions(steps=1, loss="uniform", multi_pick_frames=True)
    with pytest.raises(TrainingConfigError, match="warmstart_multi_pick_frames"):
        WarmStartOptions(steps=1, multi_pick_frames="yes")


def _coverage_sample(kind: str, coverage: dict) -> Sample:
    return Sample(id=kind, video="v.mp4", question="q?", options=["a", "b"], answer="a",
                  evidence_spans_s=[[2.0, 5.0]],
                  extra={"qa_kind": kind, "coverage": coverage, "evidence_groups_s": [[[2.0, 5.0]]]})


def test_lightning_warm_start_splits_motion_evidence_into_one_group_per_frame():
    # motion needs two picks in one event: with multi_pick_frames each of its 3 evidence frames is a group
    # (so one frame cannot satisfy the loss); a one-pick kind keeps its single group
    batch = {"timestamps": torch.arange(8, dtype=torch.float64).expand(2, 8),
             "samples": [_coverage_sample("motion", {"rule": "any", "min_picks": 2}),
                         _coverage_sample("colour", {"rule": "any", "min_picks": 1})]}
    plain = batch_group_masks(batch, WarmStartOptions(steps=1))
    split = batch_group_masks(batch, WarmStartOptions(steps=1, multi_pick_frames=True))
    assert plain.shape == (2, 1, 8) and plain[0, 0].nonzero().flatten().tolist() == [2, 3, 4]
    assert split.shape == (2, 3, 8)
    assert [row.nonzero().flatten().tolist() for row in split[0]] == [[2], [3], [4]]
    assert split[1, 0].nonzero().flatten().tolist() == [2, 3, 4] and not split[1, 1:].any()
    module = TSPOModule(encoder="tiny-random", warmstart_steps=1, warmstart_multi_pick_frames=True)
    assert module.warmstart.multi_pick_frames is True


def test_group_loss_is_the_default_at_tau_0_1():
    opts = WarmStartOptions()
    assert (opts.loss, opts.tau) == ("group", 0.1)


def test_group_masks_follow_the_evidence_groups_of_a_sample():
    times = np.arange(10, dtype=np.float64)
    masks = group_masks(times, [[[1.0, 3.0]], [[5.0, 6.0], [8.0, 9.0]]])
    assert masks.shape == (2, 10)
    assert masks[0].nonzero()[0].tolist() == [1, 2] and masks[1].nonzero()[0].tolist() == [5, 8]
    sample = Sample(id="s", video="v.mp4", question="q?", options=["a", "b"], answer="a",
                    evidence_spans_s=[[1.0, 3.0]])
    assert evidence_groups(sample) == [[[1.0, 3.0]]]
    assert group_masks(times, []).shape == (0, 10)


def test_group_loss_max_reduction_is_the_worst_group():
    scores = torch.tensor([[3.0, 0.0, 1.0, 0.0]])
    groups = torch.tensor([[[True, False, False, False], [False, False, True, False], [False] * 4]])
    logp = torch.log_softmax(scores[0] / 0.1, -1)
    assert float(evidence_group_loss(scores, groups, reduce="max")) == pytest.approx(float(-logp[2]), rel=1e-5)
    assert evidence_group_loss(scores, groups, reduce="max") > evidence_group_loss(scores, groups)
    with pytest.raises(ObjectiveInputError, match="reduce"):
        evidence_group_loss(scores, groups, reduce="min")


# -- the learned loss scale (model.warmstart_learn_scale) ------------------------------------------
def test_loss_scaled_multiplies_by_exp_of_the_scale_and_keeps_padded_frames():
    from tspo.objectives.warmstart import loss_scaled

    scores = torch.tensor([[1.0, 2.0, float("-inf")]])
    a = torch.tensor(math.log(3.0), requires_grad=True)
    out = loss_scaled(scores, a, torch.tensor([[True, True, False]]))
    assert out[0, :2].tolist() == pytest.approx([3.0, 6.0]) and out[0, 2] == float("-inf")
    out[0, :2].sum().backward()
    assert a.grad == pytest.approx(9.0)                         # d/da e^a (1 + 2), no NaN from the -inf frame
    assert loss_scaled(scores, None) is scores
    with pytest.raises(ObjectiveInputError, match="log_scale"):
        loss_scaled(scores, torch.zeros(1))
    with pytest.raises(ObjectiveInputError, match="frame_mask"):
        loss_scaled(scores, a, torch.ones(1, 2, dtype=torch.bool))


def test_learn_scale_option_is_validated_and_off_by_default():
    assert WarmStartOptions().learn_scale is False
    with pytest.raises(TrainingConfigError, match="warmstart_learn_scale"):
        WarmStartOptions(steps=1, learn_scale="yes")
    with pytest.raises(TrainingConfigError, match="warmstart_steps > 0"):
        WarmStartOptions(steps=0, learn_scale=True)
    assert TSPOModule(encoder="tiny-random").warmstart_log_scale is None


def test_lightning_warm_start_learns_the_loss_scale_outside_the_agent(root):
    """With warmstart_learn_scale the module's scalar moves during the warm start (at 10x model.lr, no
    decay), is logged, stays out of the agent's state (a saved selector is unchanged) and stays put in
    GRPO (no gradient there)."""
    rec = MetricRecorder()
    m = TSPOModule(num_frames=16, group_size=4, warmstart_steps=3, warmstart_learn_scale=True, lr=1e-3,
                   tau_start=0.3, tau_end=0.3, tau_relative=True, answer_reward="soft", w_temporal=0.0)
    scales = []

    class Snap(L.Callback):
        def on_train_batch_end(self, tr, pl_module, *a):
            scales.append(float(pl_module.warmstart_log_scale.detach()))

    trainer(5, callbacks=[rec, Snap()]).fit(m, small_datamodule(root))
    assert scales[0] != 0.0 and scales[2] != scales[0]
    assert scales[3] == scales[2] == scales[4]
    # logged before each step's update: the first warm-start step sees scale 1 (a = 0)
    assert [r["train/warmstart_log_scale"] for r in rec.rows[:3]] == pytest.approx([0.0, *scales[:2]], abs=1e-6)
    assert not any("log_scale" in k for k in m.agent.state_dict())
    assert m.warmstart_log_scale.requires_grad is False             # frozen once GRPO starts
    agent_group, scale_group = m.configure_optimizers().param_groups
    assert scale_group["params"] == [m.warmstart_log_scale]
    assert (scale_group["lr"], scale_group["weight_decay"]) == (pytest.approx(1e-2), 0.0)
    assert agent_group["lr"] == pytest.approx(1e-3)


# -- the batched warm start (model.warmstart_batch_size) -------------------------------------------
def test_warmstart_batch_size_is_validated():
    assert WarmStartOptions().batch_size is None
    for bad in (0, True, 2.0):
        with pytest.raises(TrainingConfigError, match="warmstart_batch_size"):
            WarmStartOptions(steps=1, batch_size=bad)
    with pytest.raises(TrainingConfigError, match="warmstart_steps > 0"):
        WarmStartOptions(steps=0, batch_size=4)


def test_batched_warm_start_draws_its_own_needles_of_different_lengths(root):
    """With warmstart_batch_size each warm-start step reads N supervised needles of its own (padded to one
    length: the small world's videos differ in length), logs coverage like the plain warm start, is
    deterministic for a seed, and hands over to GRPO."""
    def run():
        L.seed_everything(0)            # the agent's initial weights (as tspo train fit's seed_everything)
        rec = MetricRecorder()
        m = TSPOModule(num_frames=16, group_size=4, warmstart_steps=4, warmstart_batch_size=3, agent_family="filter",
                       warmstart_learn_scale=True, warmstart_multi_pick_frames=True, lr=3e-3, tau_start=0.3,
                       tau_end=0.3, tau_relative=True, answer_reward="soft", w_temporal=0.0, seed=0)
        dm = small_datamodule(root, max_candidates=None)   # every second: the needles differ in length
        trainer(6, callbacks=[rec]).fit(m, dm)
        return m, dm, rec.rows

    m, dm, rows = run()
    lengths = {int(dm.train_set[i]["features"].shape[0]) for i in m.span_pool().usable.tolist()}
    assert len(lengths) > 1, "the small world should hold videos of different lengths"
    warm, grpo = rows[:4], rows[4:]
    assert all(r["train/oracle_calls"] == 0 and 0 <= r["train/coverage"] <= 1 and 0 <= r["train/in_evidence"] <= 1
               for r in warm)
    assert all(math.isfinite(r["train/loss"]) for r in rows)
    assert grpo[0]["train/oracle_calls"] > 0
    again, _, rows2 = run()
    assert [r["train/loss"] for r in rows2] == [r["train/loss"] for r in rows]
    assert all(torch.equal(v, again.agent.state_dict()[k]) for k, v in m.agent.state_dict().items())


def test_batched_warm_start_uses_only_the_supervised_kinds(root):
    with pytest.raises(TrainingConfigError, match="agent_family: filter"):
        TSPOModule(warmstart_steps=1, warmstart_batch_size=2)          # the paper's agent reads no frame mask
    m = TSPOModule(num_frames=16, group_size=4, warmstart_steps=1, warmstart_batch_size=2, warmstart_kinds=["shape"],
                   agent_family="filter")
    with pytest.raises(TrainingConfigError, match="TSPODataModule"):
        m.span_pool()                                                   # no trainer, so no training set yet
    trainer(1).fit(m, small_datamodule(root))
    pool = m.span_pool()
    assert pool.usable.size and all(pool.items[i]["sample"].extra["qa_kind"] == "shape" for i in pool.usable.tolist())
