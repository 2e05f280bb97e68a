"""TSPOModule: what is trainable, what is logged, how the oracle is used, and the options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from training_helpers import MetricRecorder, small_datamodule, trainer

from tspo.rewards import OracleAnswer, SimulatedOracle
from tspo.training import TrainingConfigError, TSPOModule
from tspo.training.module import step_seed

LOGGED = ("train/reward", "train/R_A", "train/R_T", "train/adv_std", "train/tau", "train/entropy",
          "train/in_target", "train/oracle_failures", "train/cache_hit_rate", "train/approx_kl",
          "train/clipfrac", "perf/steps_per_s")


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


class PixelOracle:
    """An oracle that needs frames: records what it was shown, answers 'A'."""

    needs_frames = True
    oracle_id = "pixels"
    seen: list = []

    def answer(self, queries):
        PixelOracle.seen.extend((q.frames.shape, q.frames.dtype, q.timestamps_s.copy()) for q in queries)
        return [OracleAnswer(letter="A") for _ in queries]


def test_only_the_agent_is_trainable_state():
    m = TSPOModule(encoder="tiny-random")
    assert all(k.startswith("agent.") for k in m.state_dict())
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


def test_pixels_are_fetched_only_for_the_selected_frames(root, monkeypatch):
    import tspo.video

    calls = []
    real = tspo.video.read_frames_at

    def spy(video, timestamps_s, size=224):
        calls.append(np.asarray(timestamps_s))
        return real(video, timestamps_s, size=size)

    monkeypatch.setattr(tspo.video, "read_frames_at", spy)
    PixelOracle.seen = []
    dm = small_datamodule(root)
    m = TSPOModule(oracle="test_training_module.PixelOracle", group_size=4, num_frames=8, frame_size=32)
    trainer(2).fit(m, dm)
    assert len(calls) == 2                                          # one decode per sample per step
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
    m = TSPOModule(num_iterations=3, clip_eps=0.2)
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
