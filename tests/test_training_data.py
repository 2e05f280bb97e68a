"""TSPODataModule: synthetic data on demand, cached features, batches, resumable sharded order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_helpers import small_datamodule

from tspo.data_synth import write_manifest
from tspo.features.dataset import collate
from tspo.training import DataConfigError, SampleBatch, StepSampler, TSPODataModule


@pytest.fixture(scope="module")
def dm(tmp_path_factory):
    dm = small_datamodule(tmp_path_factory.getbasetemp() / "training_data")
    dm.setup("fit")
    return dm


def test_synth_block_makes_needles_and_batches_have_the_documented_shapes(dm):
    assert len(dm.train_set) == 64 and len(dm.val_set) == 48
    batch = collate([dm.train_set[i] for i in range(4)])
    assert batch["features"].shape == (4, 128, 64) and batch["features"].dtype == torch.float32
    assert batch["text"].shape == (4, 64)
    assert batch["timestamps"].shape == (4, 128) and batch["timestamps"].dtype == torch.float64
    assert batch["target_mask"].dtype == torch.bool
    assert isinstance(batch["samples"], SampleBatch) and len(batch["samples"]) == 4
    # target mask == candidates inside the target spans; 12-25 % of the candidates
    s, times, mask = batch["samples"][0], batch["timestamps"][0].numpy(), batch["target_mask"][0].numpy()
    inside = np.zeros(128, dtype=bool)
    for a, b in s.target_spans_s:
        inside |= (times >= a) & (times < b)
    np.testing.assert_array_equal(mask, inside)
    assert 14 <= mask.sum() <= 33


def test_cached_features_equal_decoding_the_video(dm):
    """The cache is a pure speed-up: features match decoding + encoding the composed video."""
    from tspo.features.cache import encode_candidates

    sample = dm.train_set.samples[0]
    decoded = encode_candidates(sample.video, dm.encoder, 1.0, 128).features
    torch.testing.assert_close(dm.train_set.features(0), decoded, atol=1e-4, rtol=1e-4)


def test_step_sampler_is_deterministic_sharded_and_resumable():
    full = list(StepSampler(10, 25, seed=1))
    assert full == list(StepSampler(10, 25, seed=1))
    assert sorted(full[:10]) == list(range(10)) and sorted(full[10:20]) == list(range(10))   # whole passes
    assert full[:10] != full[10:20]                                                          # reshuffled
    assert list(StepSampler(10, 25, seed=1, start=7)) == full[7:]
    r0 = list(StepSampler(10, 10, seed=1, rank=0, world_size=2))
    r1 = list(StepSampler(10, 10, seed=1, rank=1, world_size=2))
    assert sorted(r0[:5] + r1[:5]) == list(range(10))                                        # disjoint shards
    s = StepSampler(10, 4, seed=1)
    s.set_epoch(2)
    assert list(s) == list(StepSampler(10, 12, seed=1))[8:12]                                # epochs continue


def test_collate_refuses_unequal_candidate_counts(dm):
    a, b = dm.train_set[0], dict(dm.train_set[1])
    b["features"] = b["features"][:100]
    with pytest.raises(DataConfigError, match="batch_size=1"):
        collate([a, b])


def test_missing_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(DataConfigError, match="train_manifest"):
        TSPODataModule()
    with pytest.raises(DataConfigError, match="does not exist"):
        TSPODataModule(train_manifest=str(tmp_path / "nope.jsonl")).setup("fit")
    with pytest.raises(DataConfigError, match="features_from"):
        TSPODataModule(train_manifest="x", features_from="disk")
    empty = tmp_path / "empty.jsonl"
    write_manifest(empty, [])
    with pytest.raises(ValueError, match="no samples"):
        TSPODataModule(train_manifest=str(empty), feature_cache=str(tmp_path / "f"), progress=False).setup("fit")


def test_options_are_embedded_only_for_agents_that_read_them(dm):
    """The paper agent ignores multiple-choice options, so a datamodule training it does not encode them
    (items and batches carry no "options"); the filter agent's does. Held-out scoring works either way."""
    from types import SimpleNamespace

    from tspo.agents import FilterAgent, TemporalAgent
    from tspo.evaluation.heldout import heldout_metrics
    from tspo.features.dataset import FeatureDataset
    from tspo.rewards import SimulatedOracle

    samples = dm.train_set.samples[:4]
    assert all(s.options for s in samples)
    bare = FeatureDataset(samples, dm.encoder, max_candidates=128, cache=dm.train_set.cache, progress=False,
                          options=False)
    assert "options" not in bare[0] and "options" not in collate([bare[0], bare[1]])
    with_options = FeatureDataset(samples, dm.encoder, max_candidates=128, cache=dm.train_set.cache, progress=False)
    assert with_options[0]["options"].shape == (len(samples[0].options), 64)

    for agent, reads in ((TemporalAgent(dim=64), False), (FilterAgent(dim=64), True), (None, True)):
        probe = TSPODataModule(train_manifest="unused.jsonl", encoder="tiny-random")
        probe.trainer = SimpleNamespace(lightning_module=SimpleNamespace(agent=agent))
        assert probe._agent_reads_options() is reads

    got = heldout_metrics(bare, SimulatedOracle(), k=4, agent=TemporalAgent(dim=64).eval(), methods=("tspo", "clip"))
    assert got["tspo"]["n"] == got["clip"]["n"] == len(samples)
