"""TSPOModule with the preference objective: offline DPO from a log, GRPO + replay, logging answers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from training_helpers import MetricRecorder, small_datamodule, small_synth, trainer

from tspo import TSPOSelector
from tspo.evaluation.answer_log import AnswerLogger, collect_answers, read_answer_log
from tspo.evaluation.heldout import heldout_metrics
from tspo.rewards import OracleCache, SimulatedOracle
from tspo.training import TrainingConfigError, TSPOModule

K = 16


@pytest.fixture(scope="module")
def dm(tmp_path_factory):
    dm = small_datamodule(tmp_path_factory.getbasetemp() / "training_data")
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def uniform_log(dm, tmp_path_factory):
    path = tmp_path_factory.mktemp("logs") / "uniform.jsonl"
    oracle = OracleCache(AnswerLogger(SimulatedOracle(), path, policy="uniform"))
    collect_answers(dm.train_set, oracle, K, draws=4, policy="uniform", rows=range(32), seed=0)
    assert oracle.misses == 128
    return path


class NoOracle:
    """Fails the test if training asks it anything."""

    oracle_id, needs_frames = "none", False

    def answer(self, queries):
        raise AssertionError("offline DPO asked the oracle")


def test_offline_dpo_never_calls_the_oracle_and_moves_only_the_agent(dm, uniform_log, monkeypatch):
    import tspo.rewards

    monkeypatch.setattr(tspo.rewards, "build_oracle", lambda *a, **k: NoOracle())
    rec = MetricRecorder()
    L.seed_everything(0)
    m = TSPOModule(num_frames=K, objective="dpo", preference_log=str(uniform_log), dpo_beta=0.02, pairs_per_step=8)
    before = {k: v.clone() for k, v in m.agent.state_dict().items()}
    ref_before = {k: v.clone() for k, v in m.ref_agent.state_dict().items()}
    trainer(12, callbacks=[rec]).fit(m, dm)
    assert m.oracle_calls == 0 and m._frozen["oracle"] is None
    assert m._replay.stats["pairs"] == len(m._replay) > 0
    assert any(not torch.equal(before[k], v) for k, v in m.agent.state_dict().items())
    assert all(torch.equal(ref_before[k], v) for k, v in m.ref_agent.state_dict().items())
    assert not any(p.requires_grad for p in m.ref_agent.parameters())
    first, last = rec.rows[0], rec.rows[-1]
    assert first["train/loss"] == pytest.approx(math.log(2), abs=1e-5)       # policy == reference at step 0
    assert last["train/loss"] < first["train/loss"] and last["train/oracle_calls"] == 0
    assert 0.0 <= last["train/dpo_accuracy"] <= 1.0


@pytest.mark.slow
def test_offline_dpo_from_a_uniform_log_learns_to_pick_the_target(dm, uniform_log):
    L.seed_everything(0)
    m = TSPOModule(num_frames=K, objective="dpo", preference_log=str(uniform_log), dpo_beta=0.02, tau_steps=3000,
                   pairs_per_step=8)
    oracle = SimulatedOracle()
    before = heldout_metrics(dm.val_set, oracle, K, m.agent, methods=("tspo", "uniform"))
    trainer(60).fit(m, dm)
    after = heldout_metrics(dm.val_set, oracle, K, m.agent, methods=("tspo",))["tspo"]
    print("held-out before:", before, "\nafter offline DPO on 128 logged answers:", after)
    assert before["tspo"]["target_fraction"] < 0.4
    assert after["target_fraction"] >= 0.6
    assert after["accuracy"] >= before["uniform"]["accuracy"] + 0.1


def test_mixed_replays_stored_pairs_between_online_steps_and_counts_only_real_calls(dm, tmp_path):
    log = tmp_path / "train_answers.jsonl"
    m = TSPOModule(num_frames=K, group_size=8, replay_ratio=2, dpo_beta=0.02, pairs_per_step=8, answer_log=str(log))
    calls = []
    inner = m.oracle.oracle                          # the AnswerLogger inside the cache

    class Count(L.Callback):
        def on_train_batch_end(self, trainer, module, *a):
            calls.append(module.oracle_calls)

    trainer(9, callbacks=[Count()]).fit(m, dm)
    # online GRPO at batches 0, 3, 6; replay (no oracle) in between
    assert [calls[i] - (calls[i - 1] if i else 0) > 0 for i in range(9)] == [True, False, False] * 3
    assert m.oracle_calls == m.oracle.misses == inner.logged == len(read_answer_log(log)) <= 3 * 8
    assert all(r["policy"] == "train" for r in read_answer_log(log))
    assert len(m._replay) > 0 and m._replay.stats["pairs"] == len(m._replay)


def test_a_log_written_during_training_trains_an_offline_run(dm, tmp_path):
    log = tmp_path / "answers.jsonl"
    trainer(4).fit(TSPOModule(num_frames=K, group_size=8, answer_log=str(log)), dm)
    m = TSPOModule(num_frames=K, objective="dpo", preference_log=str(log), pairs_per_step=4)
    trainer(2).fit(m, dm)
    assert m._replay.stats["records"] == len(read_answer_log(log)) > 0 and len(m._replay) > 0


def test_a_log_without_pairs_is_refused(dm, tmp_path):
    log = tmp_path / "one.jsonl"
    collect_answers(dm.train_set, AnswerLogger(SimulatedOracle(), log), K, draws=1, rows=range(3))
    with pytest.raises(TrainingConfigError, match="no preference pairs"):
        trainer(1).fit(TSPOModule(num_frames=K, objective="dpo", preference_log=str(log)), dm)


@pytest.mark.parametrize(("kw", "match"), [
    ({"objective": "ppo"}, "objective"),
    ({"objective": "dpo"}, "preference_log"),
    ({"replay_ratio": -1}, "replay_ratio"),
    ({"replay_ratio": 1.5}, "replay_ratio"),
    ({"objective": "dpo", "preference_log": "x.jsonl", "replay_ratio": 1}, "replay_ratio"),
    ({"replay_ratio": 1, "num_iterations": 2, "clip_eps": 0.2}, "num_iterations"),
    ({"replay_ratio": 1, "dpo_beta": 0.0}, "dpo_beta"),
    ({"replay_ratio": 1, "pairs_per_step": 0}, "pairs_per_step"),
    ({"min_margin": -0.1}, "min_margin"),
])
def test_bad_preference_options_raise_naming_the_option(kw, match):
    with pytest.raises(TrainingConfigError, match=match):
        TSPOModule(**kw)


CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"


def _small_override(tmp_path, root, **model) -> Path:
    synth = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(small_synth(root)).items()}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({
        "trainer": {"max_steps": 8, "val_check_interval": 8, "default_root_dir": str(tmp_path / "run"),
                    "enable_progress_bar": False, "callbacks": []},
        "model": model,
        "data": {"synth": synth, "feature_cache": str(root / "features"), "progress": False},
        "export": {"dirpath": str(tmp_path / "selector")},
    }))
    return path


def test_yaml_offline_dpo_trains_from_a_tspo_eval_log(dm, tmp_path_factory, tmp_path):
    from tspo.cli.train import main as train_main
    from tspo.evaluation.evaluate import main as eval_main

    root = tmp_path_factory.getbasetemp() / "training_data"
    log = tmp_path / "uniform.jsonl"
    train_manifest, _ = small_synth(root).paths()
    assert eval_main(["--manifest", str(train_manifest), "--encoder", "tiny-random", "--methods", "uniform",
                      "-k", "16", "--fps", "1", "--max-candidates", "128", "--limit", "8",
                      "--log-answers", str(log), "--log-draws", "3"]) == 0
    records = read_answer_log(log)
    assert len(records) == 8 * (1 + 3) and {r["policy"] for r in records} == {"eval:uniform"}
    override = _small_override(tmp_path, root, preference_log=str(log))
    assert train_main(["fit", "--config", str(CONFIGS / "synthetic_needle_dpo.yaml"), "--config", str(override)]) == 0
    sel = TSPOSelector.from_pretrained(tmp_path / "selector", cache=False)
    assert sel.config["trained_with"]["steps"] == 8


def test_yaml_mixed_runs_and_logs_its_answers(dm, tmp_path_factory, tmp_path):
    from tspo.cli.train import main as train_main

    root = tmp_path_factory.getbasetemp() / "training_data"
    log = tmp_path / "mixed.jsonl"
    override = _small_override(tmp_path, root, answer_log=str(log))
    assert train_main(["fit", "--config", str(CONFIGS / "synthetic_needle_mixed.yaml"), "--config", str(override)]) == 0
    # online steps 0 and 4 of 8 (replay_ratio 3), G = 8 each; the held-out check's answers are logged too
    train_records = [r for r in read_answer_log(log) if r["sample_id"].startswith("needle-train")]
    assert 0 < len(train_records) <= 2 * 8
