"""GRPO over both zoom stages: pure pieces, per-stage credit, and a short training run from the YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tspo.objectives.grpo import group_advantages
from tspo.objectives.zoom_credit import (
    MASKED_LOGIT,
    coarse_positions,
    masked_logits,
    member_pool_mask,
    spans_from_picks,
    zoom_advantages,
    zoom_loss,
    zoom_reward,
)

ROOT = Path(__file__).resolve().parents[1]


def test_coarse_positions_match_the_capped_candidate_grid():
    from tspo.video import candidate_times

    times = candidate_times(3000.0, 1.0)
    pos = coarse_positions(times, 128)
    np.testing.assert_array_equal(times[pos], candidate_times(3000.0, 1.0, 128))
    np.testing.assert_array_equal(coarse_positions(np.arange(5.0), 128), np.arange(5))


def test_spans_masks_and_logits():
    coarse_t = torch.tensor([0.0, 10.0, 20.0, 30.0])
    spans = spans_from_picks(coarse_t, torch.tensor([[1], [3]]), width_s=6.0, duration_s=32.0)
    np.testing.assert_allclose(spans.numpy(), [[[7, 13]], [[27, 32]]])
    pool_t = torch.tensor([0.0, 8.0, 10.0, 12.0, 20.0, 28.0, 30.0, 31.0])
    is_coarse = torch.tensor([True, False, True, False, True, False, True, False])
    mask = member_pool_mask(pool_t, is_coarse, spans)
    assert mask.tolist() == [[True, True, True, True, True, False, True, False],
                             [True, False, True, False, True, True, True, True]]
    logits = masked_logits(torch.arange(8.0), mask)
    assert logits[0, 5] == MASKED_LOGIT and logits[1, 3] == MASKED_LOGIT and logits[1, 7] == 7.0


def test_zoom_reward_is_the_share_of_evidence_inside_the_spans():
    spans = np.array([[[0.0, 10.0]], [[12.0, 14.0]], [[20.0, 30.0]]])
    r = zoom_reward(spans, [[10.0, 14.0]])
    np.testing.assert_allclose(r, [0.0, 0.5, 0.0])
    two = np.array([[[9.0, 12.0], [13.0, 20.0]]])  # two spans of one member, union covers 3 of 4 s
    np.testing.assert_allclose(zoom_reward(two, [[10.0, 14.0]]), [0.75])
    with pytest.raises(ValueError, match="no evidence"):
        zoom_reward(spans, [])


def test_each_stage_is_credited_by_its_own_reward():
    r_zoom = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    r_a = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    r_t = torch.tensor([[0.5, 0.5, 0.5, 0.5]])  # no spread: no signal
    a_span, a_frames = zoom_advantages(r_zoom, r_a, r_t)
    torch.testing.assert_close(a_span, group_advantages(r_zoom))
    torch.testing.assert_close(a_frames, group_advantages(r_a))
    # the span log-probs get the zoom advantage's gradient, the frame log-probs the answer's
    logp_span = torch.zeros(1, 4, 2, requires_grad=True)
    logp_frames = torch.zeros(1, 4, 3, requires_grad=True)
    zoom_loss(logp_span, logp_frames, a_span, a_frames).backward()
    torch.testing.assert_close(logp_span.grad[0, :, 0], -a_span[0] / (4 * 2))
    torch.testing.assert_close(logp_frames.grad[0, :, 0], -a_frames[0] / (4 * 3))
    valid = torch.tensor([[True, True, False, True]])
    a_span_v, _ = zoom_advantages(r_zoom, r_a, r_t, valid)
    assert a_span_v[0, 2] == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        zoom_advantages(r_zoom, r_a[:, :3], r_t)


def test_zoom_training_runs_from_the_yaml_config(tmp_path):
    """The example config's model/data blocks, shrunk: GRPO over both stages runs and moves the agent."""
    from training_helpers import small_synth, trainer

    from tspo.training import TSPODataModule, TSPOModule

    cfg = yaml.safe_load((ROOT / "examples/configs/zoom_needle.yaml").read_text())
    model_kw = {k: v for k, v in cfg["model"].items() if k != "oracle_args"}
    assert model_kw["zoom"]["coarse_candidates"] >= 1 and cfg["data"]["max_candidates"] is None
    model = TSPOModule(**{**model_kw, "group_size": 4, "zoom": {**model_kw["zoom"], "coarse_candidates": 16}},
                       oracle_args=cfg["model"]["oracle_args"])
    dm = TSPODataModule(synth=small_synth(tmp_path), feature_cache=str(tmp_path / "f"), progress=False,
                        max_candidates=None, batch_size=1)
    before = {k: v.clone() for k, v in model.agent.state_dict().items()}
    trainer(6).fit(model, dm)
    assert model.batches_seen == 6
    moved = [k for k, v in model.agent.state_dict().items() if not torch.equal(v, before[k])]
    assert moved  # both stages' losses reach the one agent


def test_zoom_options_are_checked():
    from tspo.training import TSPOModule
    from tspo.training.module import TrainingConfigError

    with pytest.raises(TrainingConfigError, match="unknown keys"):
        TSPOModule(zoom={"spans": 3})
    with pytest.raises(TrainingConfigError, match="num_iterations"):
        TSPOModule(zoom={"num_spans": 2}, num_iterations=2, clip_eps=0.2)
    with pytest.raises(ValueError, match="num_spans"):
        TSPOModule(zoom={"num_spans": 0})
