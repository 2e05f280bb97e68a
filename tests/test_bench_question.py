"""The question benchmark's protocol and goal check (benchmarks/bench_question.py), without training."""

from __future__ import annotations

import pytest

from benchmarks import bench_question as bq


def _stats(cov: float) -> dict:
    return {"accuracy": cov, "coverage": cov, "n": 20, "targets": 10}


def _diff(d: float, lo: float, hi: float) -> dict:
    return {"diff": d, "ci": [lo, hi], "n": 20, "targets": 10}


def test_goal_check_needs_the_level_and_an_interval_above_a_weaker_baseline():
    table = {"after": {"t s0": _stats(0.97), "clip": _stats(0.05), "uniform": _stats(0.10)},
             "order": {"t s0": _stats(0.92), "clip": _stats(0.91), "uniform": _stats(0.0)},
             "count": {"t s0": _stats(0.96), "clip": _stats(0.80), "uniform": _stats(0.0)},
             "colour": {"t s0": _stats(0.97), "clip": _stats(1.00), "uniform": _stats(0.2)},
             "all": {"t s0": _stats(0.929), "clip": _stats(0.7), "uniform": _stats(0.1)}}
    vs = {"clip": {"after": _diff(0.92, 0.8, 1.0), "order": _diff(0.01, -0.1, 0.1), "count": _diff(0.16, -0.01, 0.3)},
          "uniform": {"after": _diff(0.87, 0.7, 1.0), "order": _diff(0.9, 0.8, 1.0), "count": _diff(0.96, 0.9, 1.0)}}
    got = bq.goal_check(table, vs, "t s0", ["uniform", "clip"])
    assert got["after"] == "yes (0.970)"       # level reached, interval vs the best baseline (uniform) above 0
    assert got["order"] == "yes (0.920)"       # the best baseline (clip 0.91) already reaches 0.90: level only
    assert got["count"] == "no (0.960)"        # clip 0.80 < 0.95 and the paired interval touches 0
    assert got["colour"] == "no (0.970)"       # more than 0.02 below the best baseline
    assert got["all"] == "no (0.929)"          # below 0.93


def test_protocols_and_labels():
    goal = bq.PROTOCOLS["goal"].check()
    assert goal.train_targets >= 1000 and goal.ratios == (1.0, 0.5) and len(goal.seeds) == 2
    assert bq.label("tspo", "tspo", 1) == "tspo s1" and bq.label("tspo+kl", "tspo+aks", 0) == "tspo+kl (tspo+aks) s0"
    from dataclasses import replace

    with pytest.raises(ValueError, match="unknown variants"):
        replace(goal, variants=("nope",)).check()
    with pytest.raises(ValueError, match="confuser ratios"):
        replace(goal, ratios=(0.0,)).check()
    with pytest.raises(ValueError, match="misplaced"):
        replace(goal, baselines=("clip", "tspo")).check()
    with pytest.raises(ValueError, match="include clip"):
        replace(goal, baselines=("uniform",)).check()


def test_heldout_worlds_share_target_clips_and_differ_in_haystack(tmp_path):
    p = bq.Protocol(num_train=16, train_targets=8, num_val=14, val_targets=7, ratios=(1.0, 0.5))
    train, held = bq.worlds(tmp_path, p)
    assert held[1.0] is train and train.train_targets == 8 and train.val_targets == 7
    half = held[0.5]
    assert half.confuser_ratio == 0.5 and half.distractors > 0 and half.val_targets == train.val_targets
    assert (half.seed, half.confusers, half.target_seconds) == (train.seed, train.confusers, train.target_seconds)


def test_cli_rejects_an_unknown_variant_before_any_work(capsys):
    assert bq.main(["--variants", "nope", "--steps", "1"]) == 2
    assert "unknown variants ['nope']" in capsys.readouterr().err
    assert bq.main(["--only-kind", "after", "--variants", "nope"]) == 2


def test_the_recommended_recipe_variant_is_the_demos_recipe_with_its_trainer_settings_apart():
    """`filter+warmstart` measures what examples/configs/question_warmstart.yaml and the demo train: the
    demo's QUESTION_RECIPE (one owner), a warm start, and four questions per optimizer step, which goes
    to the Trainer, not to TSPOModule."""
    from tspo.cli.demo import QUESTION_RECIPE

    module, trainer = bq.split_options(bq.VARIANT_OPTIONS["filter+warmstart"])
    assert trainer == {"accumulate_grad_batches": 4}
    assert {k: module[k] for k in QUESTION_RECIPE} == QUESTION_RECIPE and module["warmstart_steps"] == 2000
    assert "accumulate_grad_batches" not in module
    assert bq.total_steps(module, 1500) == 3500 and bq.total_steps({}, 1500) == 1500


@pytest.mark.parametrize("variant", sorted(bq.VARIANT_OPTIONS))
def test_every_variant_is_a_valid_module_configuration(variant):
    """Each variant's options build a TSPOModule (a misspelt or refused option fails here, not an hour
    into a benchmark, built as the benchmark builds it: on the paper's recipe); a variant's own lr replaces
    the benchmark's default."""
    module, _ = bq.split_options(bq.variant_options(variant))
    model = bq.new_module(module, 0, encoder="tiny-random")
    assert model.hparams.lr == bq.VARIANT_OPTIONS[variant].get("lr", bq.LR)


def test_train_mix_must_be_a_ratio_below_one():
    from dataclasses import replace

    goal = bq.PROTOCOLS["goal"]
    assert replace(goal, train_mix=0.5).check().train_mix == 0.5
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="train_mix must be a confuser ratio in \\(0, 1\\)"):
            replace(goal, train_mix=bad).check()


def test_heldout_seeds_add_new_worlds_whose_needles_join_each_set_with_prefixed_clips(tmp_path):
    """``--heldout-seeds``: one more held-out world per seed and ratio (a new draw of every clip, haystacks as
    the protocol's own held-out sets), its needles joined to that ratio's set with ids and target clips
    prefixed, so the cluster bootstrap never merges two worlds' clip 0."""
    from dataclasses import replace

    from tspo.evaluation.kind_report import cluster_of

    p = bq.Protocol(num_train=8, train_targets=8, num_val=4, val_targets=2, ratios=(1.0, 0.5), heldout_seeds=(3,)).check()
    train, held = bq.worlds(tmp_path, p)
    extra = bq.extra_worlds(tmp_path, p)
    assert [c.seed for c in extra[1.0]] == [3] and extra[1.0][0].confuser_ratio == 1.0
    assert extra[1.0][0].distractors == train.distractors and extra[0.5][0].distractors == held[0.5].distractors
    assert extra[0.5][0].val_targets == 2 and extra[0.5][0].num_val == 4
    assert bq.heldout_key(held[0.5]) == bq._world_key(held[0.5]) != bq.heldout_key(held[0.5], extra[0.5])
    half = replace(p, ratios=(0.5,))      # render two worlds, not four: the joining is the same per ratio
    sets = bq.heldout_sets(tmp_path, half, {0.5: held[0.5]})
    for r in half.ratios:
        ids = [s.id for s in sets[r]]
        assert len(ids) == 8 and len(set(ids)) == 8 and sum(i.startswith("s3-") for i in ids) == 4
        clusters = {cluster_of(s) for s in sets[r]}
        assert sum(c.startswith("s3-") for c in clusters) == 2 and len(clusters) == 4
    for bad in ((0,), (5,), (2, 2)):
        with pytest.raises(ValueError, match="heldout_seeds must be distinct world seeds"):
            replace(p, heldout_seeds=bad).check()
