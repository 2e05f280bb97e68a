"""Clip selection: clips grow evenly around their anchors, keep every anchor, merge when they touch."""

from __future__ import annotations

import numpy as np
import pytest

from tspo.selection.clips import ClipConfig, ClipConfigError, grow_clips, runs_of, select_clips


def test_one_anchor_grows_into_one_clip_reaching_forward():
    picks = select_clips(np.array([10]), 30, 6)
    np.testing.assert_array_equal(picks.positions, [8, 9, 10, 11, 12, 13])   # one step more after the anchor
    np.testing.assert_array_equal(picks.runs, [[8, 13]])
    np.testing.assert_array_equal(picks.clip_ids, [0] * 6)


def test_anchors_grow_evenly_and_touching_clips_merge():
    picks = select_clips(np.array([5, 20]), 40, 6)
    np.testing.assert_array_equal(picks.positions, [4, 5, 6, 19, 20, 21])
    np.testing.assert_array_equal(picks.clip_ids, [0, 0, 0, 1, 1, 1])
    merged = select_clips(np.array([5, 8]), 40, 8)
    np.testing.assert_array_equal(merged.runs, [[3, 10]])                       # the two clips touch: one clip
    np.testing.assert_allclose(merged.spans_s(np.arange(40) * 0.5), [[1.5, 5.0]])


def test_every_anchor_is_kept_and_edges_clip_to_the_video():
    anchors = np.array([0, 3, 17, 29])
    picks = select_clips(anchors, 30, 10)
    assert set(anchors) <= set(picks.positions.tolist()) and len(picks.positions) == 10
    assert picks.positions.min() == 0 and picks.positions.max() == 29
    assert len(select_clips(anchors, 30, 2).positions) == 4                     # fewer frames than anchors: anchors
    assert grow_clips(np.array([2]), 5, 50).all()                               # more frames than candidates: all


def test_runs_of():
    np.testing.assert_array_equal(runs_of(np.array([1, 1, 0, 1, 0, 0, 1], bool)), [[0, 1], [3, 3], [6, 6]])
    assert runs_of(np.zeros(4, bool)).shape == (0, 2)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="anchors must be candidate positions"):
        select_clips(np.array([40]), 30, 5)
    with pytest.raises(ValueError, match="num_frames must be a positive int"):
        select_clips(np.array([1]), 30, 0)
    with pytest.raises(ClipConfigError, match="max_frames"):
        ClipConfig(max_frames=0)


def test_cluster_bootstrap_resamples_whole_clusters():
    from tspo.evaluation.kind_report import cluster_bootstrap

    assert cluster_bootstrap([1.0, 1.0, 1.0], ["a", "b", "c"]) == (1.0, 1.0)
    lo, hi = cluster_bootstrap([0.0] * 10 + [1.0] * 10, ["a"] * 10 + ["b"] * 10)
    assert (lo, hi) == (0.0, 1.0)                    # two clusters: the mean is 0, 0.5 or 1, never between
    lo, hi = cluster_bootstrap(np.r_[np.zeros(50), np.ones(50)], list(range(100)), seed=1)
    assert 0.38 < lo < 0.5 < hi < 0.62
    with pytest.raises(ValueError, match="agree"):
        cluster_bootstrap([1.0], ["a", "b"])
