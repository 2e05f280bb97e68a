"""TSPOModule: what is trainable, what is logged, how the oracle is used, and the options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from training_helpers import MetricRecorder, small_datamodule, trainer

from tspo.objectives.grpo import Rewards, group_advantages, score_answers
from tspo.rewards import OracleAnswer, SimulatedOracle, decode_picks
from tspo.settings import PAPER_GRPO_RECIPE
from tspo.training import TrainingConfigError, TSPOModule
from tspo.training.grpo_step import advantages
from tspo.training.module import step_seed
from tspo.training.options import RewardOptions

LOGGED = ("train/reward", "train/R_A", "train/R_T", "train/adv_std", "train/tau", "train/entropy",
          "train/in_target", "train/oracle_failures", "train/oracle_unparsed", "train/cache_hit_rate",
          "train/approx_kl", "train/clipfrac", "perf/steps_per_s")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "training_data"


class FailingOracle:
    """SimulatedOracle that fails every third query of a call (a flaky server)."""

    needs_frames = False
    oracle_id = "failing"

    def __init__(self) -> None:
        self.inner = SimulatedOracle()
        self.failed = 0

    def answer(self, queries):
        out = self.inner.answer(queries)
        for i in range(0, len(out), 3):
            out[i] = OracleAnswer.failed("timeout")
            self.failed += 1
        return out


class UnreadableOracle:
    """The model answers, but half the time (odd group members) its text names no option."""

    needs_frames = False
    oracle_id = "unreadable"

    def __init__(self) -> None:
        self.inner = SimulatedOracle()

    def answer(self, queries):
        out = self.inner.answer(queries)
        return [OracleAnswer(None, raw="hmm") if i % 2 else a for i, a in enumerate(out)]


class PixelOracle:
    """An oracle that needs frames: records what it was shown, answers 'A'."""

    needs_frames = True
    oracle_id = "pixels"
    seen: list = []

    def answer(self, queries):
        PixelOracle.seen.extend((q.frames.shape, q.frames.dtype, q.timestamps_s.copy()) for q in queries)
        return [OracleAnswer(letter="A") for _ in queries]


def test_only_the_agent_is_trainable_state():
    m = TSPOModule(encoder="tiny-random", **PAPER_GRPO_RECIPE)
    assert all(k.startswith("agent.") for k in m.state_dict())
    # the defaults add the frozen KL reference to the state (a resumed run keeps it), never to the optimizer
    assert {k.split(".")[0] for k in TSPOModule(encoder="tiny-random").state_dict()} == {"agent", "ref_agent"}
    opt = m.configure_optimizers()
    opt_params = {id(p) for g in opt.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in m.agent.parameters()}
    assert m.encoder.dim == m.agent.dim == 64
    assert not any(p is q for p in m.parameters() for q in m.encoder.model.parameters())


def test_kl_reference_is_frozen_and_never_optimised():
    m = TSPOModule(kl_beta=0.1)
    assert m.ref_agent is not None and not any(p.requires_grad for p in m.ref_agent.parameters())
    opt_params = {id(p) for g in m.configure_optimizers().param_groups for p in g["params"]}
    assert not opt_params & {id(p) for p in m.ref_agent.parameters()}


@pytest.mark.parametrize(("kw", "match"), [
    ({"group_size": 1}, "group_size"),
    ({"num_frames": 0}, "num_frames"),
    ({"advantage": "sum"}, "advantage"),
    ({"logprob": "exact"}, "logprob"),
    ({"clip_eps": 0.0}, "clip_eps"),
    ({"num_iterations": 2}, "clip_eps"),
    ({"kl_beta": -1.0}, "kl_beta"),
    ({"tau_steps": 0}, "tau_steps"),
])
def test_bad_options_raise_naming_the_option(kw, match):
    with pytest.raises(TrainingConfigError, match=match):
        TSPOModule(**kw)


def test_bad_oracle_name_is_reported():
    m = TSPOModule(oracle="no-such-oracle")
    with pytest.raises(ValueError, match="unknown oracle"):
        _ = m.oracle


def test_noise_seed_depends_on_seed_rank_and_batch_only():
    assert step_seed(0, 0, 5) == step_seed(0, 0, 5)
    assert len({step_seed(0, 0, 5), step_seed(1, 0, 5), step_seed(0, 1, 5), step_seed(0, 0, 6)}) == 4


def test_training_logs_the_diagnostics_and_never_decodes_video(root, monkeypatch):
    dm = small_datamodule(root)
    dm.setup("fit")
    import tspo.video

    def no_decode(*a, **k):
        raise AssertionError("training decoded video although features are cached and the oracle needs no pixels")

    for name in ("read_frames_at", "sample_candidates", "iter_frames_at"):
        monkeypatch.setattr(tspo.video, name, no_decode)
    rec = MetricRecorder()
    m = TSPOModule(num_frames=16, group_size=8)
    trainer(6, callbacks=[rec]).fit(m, dm)
    assert set(LOGGED) <= set(rec.rows[-1])
    for row in rec.rows:
        assert all(math.isfinite(v) for v in row.values())
        assert 0.0 <= row["train/in_target"] <= 1.0 and row["train/oracle_failures"] == 0
    taus = [r["train/tau"] for r in rec.rows]
    assert taus[0] == pytest.approx(0.025) and taus == sorted(taus, reverse=True)
    assert m.batches_seen == 6


def test_failed_oracle_answers_are_dropped_and_counted(root):
    dm = small_datamodule(root)
    rec = MetricRecorder()
    m = TSPOModule(group_size=8)
    failing = FailingOracle()
    m.oracle.oracle = failing                      # behind the module's OracleCache
    trainer(3, callbacks=[rec]).fit(m, dm)
    assert [r["train/oracle_failures"] for r in rec.rows] == [3.0, 3.0, 3.0]   # members 0, 3, 6 of G = 8
    assert all(math.isfinite(r["train/loss"]) for r in rec.rows)
    assert m.oracle.stats()["size"] == m.oracle.misses - failing.failed    # failures are never cached


def test_unparsed_answers_are_wrong_answers_not_failures(root):
    """Issue 3: only a failed query is dropped; an answer with no readable option scores R_A = 0."""
    dm = small_datamodule(root)
    rec = MetricRecorder()
    m = TSPOModule(group_size=8)
    m.oracle.oracle = UnreadableOracle()                 # in front of a fresh cache: nothing cached yet
    trainer(1, callbacks=[rec]).fit(m, dm)
    assert rec.rows[0]["train/oracle_unparsed"] == 4.0 and rec.rows[0]["train/oracle_failures"] == 0.0


def test_score_answers_drops_failed_and_scores_unparsed_as_wrong():
    from types import SimpleNamespace

    sample = SimpleNamespace(answer="A", kind="general", target_spans_s=[])
    answers = [OracleAnswer("A"), OracleAnswer(None, raw="??"), OracleAnswer.failed("HTTP 503"), OracleAnswer("B")]
    r = score_answers([sample], answers, np.zeros((1, 4, 2)))
    assert r.valid.tolist() == [[True, True, False, True]]
    assert r.unparsed.tolist() == [[False, True, False, False]]
    assert r.accuracy.tolist() == [[1.0, 0.0, 0.0, 0.0]] and r.failures == 1 and r.num_unparsed == 1
    adv = group_advantages(r.total, r.valid)[0]
    assert adv[1] < 0 and adv[2] == 0 and adv[1] == adv[3]          # unparsed ranks with the wrong answer


def test_temporal_spans_evidence_counts_picks_in_the_evidence_not_the_whole_target():
    from types import SimpleNamespace

    # target clip 10-40 s; the question's evidence only 20-25 s
    sample = SimpleNamespace(id="n1", answer="A", kind="needle", target_spans_s=[[10.0, 40.0]],
                             evidence_spans_s=[[20.0, 25.0]])
    times = np.array([[[12.0, 21.0, 24.0, 50.0], [30.0, 31.0, 32.0, 33.0]]])          # [B=1, G=2, k=4]
    answers = [OracleAnswer("A"), OracleAnswer("A")]
    paper = score_answers([sample], answers, times)
    evidence = score_answers([sample], answers, times, temporal_spans="evidence")
    assert paper.temporal.tolist() == [[0.75, 1.0]]          # picks in the target clip
    assert evidence.temporal.tolist() == [[0.5, 0.0]]        # picks in the evidence only
    no_evidence = SimpleNamespace(**{**vars(sample), "evidence_spans_s": None})
    with pytest.raises(ValueError, match="needle 'n1' has no evidence_spans_s"):
        score_answers([no_evidence], answers, times, temporal_spans="evidence")
    with pytest.raises(TrainingConfigError, match="temporal_spans must be one of"):
        TSPOModule(temporal_spans="clip")
    with pytest.raises(TrainingConfigError, match=r"explore_eps must be a number in \[0, 1\)"):
        TSPOModule(explore_eps=1.5)
    with pytest.raises(TrainingConfigError, match="span_loss must be a number >= 0"):
        TSPOModule(span_loss=-1)
    with pytest.raises(TrainingConfigError, match="they do nothing with model.zoom or model.objective dpo"):
        TSPOModule(explore_eps=0.2, zoom={"coarse_candidates": 8})
    with pytest.raises(TrainingConfigError, match="they do nothing with model.zoom or model.objective dpo"):
        TSPOModule(span_loss=1.0, objective="dpo", preference_log="log.jsonl")


def _rewards(acc, temp):
    acc, temp = torch.tensor([acc]), torch.tensor([temp])
    valid = torch.ones_like(acc, dtype=torch.bool)
    return Rewards(acc + temp, acc, temp, valid, torch.zeros_like(valid))


def test_decoupled_advantages_follow_the_reward_weights():
    r = _rewards([1.0, 0.0, 1.0, 0.0], [0.9, 0.1, 0.2, 0.6])
    a_acc, a_temp = group_advantages(r.accuracy), group_advantages(r.temporal)
    base = advantages(RewardOptions(advantage="decoupled"), r)
    torch.testing.assert_close(base, a_acc + a_temp)               # weights 1: tspo.objectives.grpo.decoupled_advantages
    only_acc = advantages(RewardOptions(advantage="decoupled", w_temporal=0.0), r)
    torch.testing.assert_close(only_acc, a_acc)
    skewed = advantages(RewardOptions(advantage="decoupled", w_accuracy=2.0, w_temporal=0.5), r)
    torch.testing.assert_close(skewed, 2.0 * a_acc + 0.5 * a_temp)
    assert not torch.allclose(skewed, base)


def test_oracle_frames_are_whole_not_centre_cropped(tmp_path):
    """A 32x64 (1:2) source reaches the oracle as 1:2 frames; a centre crop would cut half its width."""
    from types import SimpleNamespace

    from conftest import write_video

    video = write_video(tmp_path / "wide.mp4", seconds=4, fps=4, size=(32, 64))
    cand_times = np.array([0.1, 1.1, 2.1, 2.6, 3.1])
    frames = decode_picks(SimpleNamespace(video=str(video)), cand_times, {0: [0, 1, 2], 1: [0, 3, 4]}, 16)
    assert [f.shape for f in frames.values()] == [(3, 16, 32, 3)] * 2                    # G=2 selections of k=3


def test_heldout_topk_is_batched(root, monkeypatch):
    """tspo/clip take one batched top-k per batch (no loop over rows), equal to the per-row rule."""
    import tspo.agents.methods as methods
    from tspo.agents import get_method
    from tspo.evaluation.heldout import heldout_metrics

    dm = small_datamodule(root)
    dm.setup("fit")
    agent = TSPOModule().agent
    calls = []
    real = methods.select_topk
    monkeypatch.setattr(methods, "select_topk", lambda scores, k: calls.append(tuple(scores.shape)) or real(scores, k))

    class Recorder(SimulatedOracle):
        def answer(self, queries):
            asked.extend(q.timestamps_s for q in queries)
            return super().answer(queries)

    asked = []
    got = heldout_metrics(dm.val_set, Recorder(), 8, agent, batch_size=64)
    n = len(dm.val_set)
    assert calls == [(n, 128), (n, 128)]                                         # tspo, clip: one call each
    batch = [dm.val_set[i] for i in range(n)]
    feats = torch.stack([b["features"] for b in batch])
    text = torch.stack([b["text"] for b in batch])
    with torch.no_grad():
        scores = {"tspo": agent(feats, text), "clip": torch.nn.functional.cosine_similarity(feats, text[:, None], dim=-1),
                  "uniform": torch.zeros(feats.shape[:2])}
    for j, m in enumerate(("tspo", "uniform", "clip")):
        for i in range(n):
            expected = batch[i]["timestamps"][get_method(m).pick(scores[m][i], 128, 8)].numpy()
            np.testing.assert_allclose(asked[i * 3 + j], expected)  # one call, sample-major
    assert calls[2:] == [(128,)] * 2 * n                                         # (the reference's own calls)
    assert set(got) == {"tspo", "uniform", "clip"} and got["uniform"]["unparsed"] == 0


def test_pixels_are_fetched_only_for_the_selected_frames(root, monkeypatch):
    import tspo.video

    calls, crops = [], []
    real = tspo.video.read_frames_at

    def spy(video, timestamps_s, size=224, crop=True):
        calls.append(np.asarray(timestamps_s))
        crops.append(crop)
        return real(video, timestamps_s, size=size, crop=crop)

    monkeypatch.setattr(tspo.video, "read_frames_at", spy)
    PixelOracle.seen = []
    dm = small_datamodule(root)
    m = TSPOModule(oracle="test_training_module.PixelOracle", group_size=4, num_frames=8, frame_size=32,
                   answer_reward="hard")                            # PixelOracle reports no option probabilities
    trainer(2).fit(m, dm)
    assert len(calls) == 2                                          # one decode per sample per step
    assert crops == [False, False]                                  # whole frames for the oracle
    assert len(PixelOracle.seen) == 2 * 4
    shapes = {s for s, _, _ in PixelOracle.seen}
    assert shapes == {(8, 32, 32, 3)} and {d for _, d, _ in PixelOracle.seen} == {np.dtype(np.uint8)}
    for step, ts in enumerate(calls):                               # exactly the union of the group's picks
        group = [t for _, _, t in PixelOracle.seen[step * 4:(step + 1) * 4]]
        np.testing.assert_allclose(np.sort(ts), np.unique(np.concatenate(group)))
        assert len(ts) <= 4 * 8 < 128


def test_ppo_iterations_take_several_clipped_steps_per_rollout(root):
    dm = small_datamodule(root)
    rec = MetricRecorder()
    # the 0/1 reward: the simulated guesses give every rollout advantages to move the agent by
    m = TSPOModule(num_iterations=3, clip_eps=0.2, answer_reward="hard")
    assert not m.automatic_optimization
    trainer(6, callbacks=[rec]).fit(m, dm)
    assert m.batches_seen == 2 and m.global_step == 6               # 3 optimizer steps per rollout
    assert any(r["train/approx_kl"] > 0 for r in rec.rows)          # later iterations are off-policy


@pytest.mark.parametrize("kw", [{"advantage": "decoupled"}, {"logprob": "plackett_luce"}, {"kl_beta": 0.5}])
def test_options_train_and_move_the_agent(root, kw):
    dm = small_datamodule(root)
    m = TSPOModule(**kw)
    before = {k: v.clone() for k, v in m.agent.state_dict().items()}
    trainer(3).fit(m, dm)
    assert any(not torch.equal(before[k], v) for k, v in m.agent.state_dict().items())
    if m.ref_agent is not None:                                     # the reference stays the initial agent
        assert all(torch.equal(before[k], v) for k, v in m.ref_agent.state_dict().items())


def test_scores_stay_float32_under_bf16_autocast():
    """S / tau at tau = 0.01 would turn bf16 rounding of S into ~1 logit of noise."""
    m = TSPOModule()
    feats, text = torch.randn(2, 128, 64), torch.randn(2, 64)
    ref = m.scores(feats, text)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = m.agent(feats, text)                                # bf16 linear layers inside
        got = m.scores(feats, text)
    assert (rounded.float() - ref).abs().max() * 100 > 0.05           # > 0.05 logits at tau = 0.01
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref)


def test_bench_oracle_reports_the_hit_rate_a_training_run_logs(root):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_oracle.py"
    spec = importlib.util.spec_from_file_location("bench_oracle", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = bench.bench_training_cache_hit_rate(steps=4, workdir=str(root))   # reuses the rendered set
    asked, total = (int(x) for x in row["result"].split(" queries")[0].split(" of "))
    assert total == 4 * 8 and row["value"] == pytest.approx(1 - asked / total, abs=1e-3)


def test_heldout_check_shows_pixels_to_an_oracle_that_needs_them(root):
    """The held-out check asks the oracle through the same path as training (rollout.ask_oracle):
    an oracle that needs frames gets whole frames of the k picks, not a query without pixels."""
    from tspo.evaluation.heldout import heldout_metrics

    dm = small_datamodule(root)
    dm.setup("fit")
    PixelOracle.seen = []
    got = heldout_metrics(dm.val_set, PixelOracle(), 8, methods=("uniform",), frame_size=32)
    assert got["uniform"]["failures"] == 0 and len(PixelOracle.seen) == len(dm.val_set)
    assert {shape[:2] for shape, _, _ in PixelOracle.seen} == {(8, 32)}


def test_span_loss_joins_the_grpo_loss_in_a_training_step(root):
    """model.span_loss adds span_mass_loss (mass inside the target spans) to the step's loss."""
    losses = {}
    for weight in (0.0, 1.0):
        rec = MetricRecorder()
        trainer(1, callbacks=[rec]).fit(TSPOModule(group_size=4, seed=0, span_loss=weight), small_datamodule(root))
        losses[weight] = rec.rows[0]["train/loss"]
    assert losses[1.0] > losses[0.0] + 0.1       # -log mass in the target of an untrained agent is well above 0
