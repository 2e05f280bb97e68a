"""Coarse-to-fine zoom selection: spans, fine grid, budget, feature sources, selector hook."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tspo import TSPOSelector, select_frames
from tspo.features.cache import FeatureCache, video_features
from tspo.selection.zoom import (
    GridFeatureSource,
    VideoFeatureSource,
    ZoomConfig,
    ZoomConfigError,
    choose_spans,
    demote_scores,
    fine_times,
    zoom_select,
)


def needle_source(duration: int = 3600, needle=(2000, 2005), halo=(1985, 2025)) -> GridFeatureSource:
    """1 fps features: dim 1 is 1.0 inside the needle, 0.5 in the halo around it, 0 elsewhere."""
    feats = torch.zeros(duration, 2)
    feats[:, 0] = 1.0
    feats[halo[0]:halo[1], 1] = 0.5
    feats[needle[0]:needle[1], 1] = 1.0
    return GridFeatureSource(feats, np.arange(duration, dtype=float), float(duration))


def score_dim1(features: torch.Tensor) -> torch.Tensor:
    return features[:, 1].clone()


def test_choose_spans_ranks_merges_and_suppresses():
    times = np.array([0.0, 10, 20, 30, 40, 50])
    scores = torch.tensor([0.1, 0.9, 0.8, 0.2, 0.7, 0.0])
    spans = choose_spans(times, scores, num_spans=3, width_s=10.0, duration_s=60.0)
    np.testing.assert_allclose(spans, [[5, 15], [15, 25], [35, 45]])  # best first, 10 s apart: no overlap
    wide = choose_spans(times, scores, num_spans=3, width_s=30.0, duration_s=60.0)
    # 20, 30, 0 and 50 lie within 15 s of a better-ranked candidate: only 10 and 40 open spans (clipped at 0)
    np.testing.assert_allclose(wide, [[0, 25], [25, 55]])
    suppressed = choose_spans(times, scores, num_spans=2, width_s=10.0, duration_s=60.0,
                              suppress_s=np.array([[5.0, 25.0]]))
    np.testing.assert_allclose(suppressed, [[35, 45], [25, 35]])


def test_fine_times_respects_budget_rank_and_exclusions():
    spans = np.array([[10.0, 15.0], [30.0, 34.0]])
    np.testing.assert_array_equal(fine_times(spans, 1.0, 60.0, budget=100), [10, 11, 12, 13, 14, 30, 31, 32, 33])
    # the budget goes to the best-ranked span first
    np.testing.assert_array_equal(fine_times(spans, 1.0, 60.0, budget=6), [10, 11, 12, 13, 14, 30])
    # already-encoded times are neither returned nor charged
    np.testing.assert_array_equal(fine_times(spans, 1.0, 60.0, budget=5, exclude_s=np.array([10.0, 12.0])),
                                  [11, 13, 14, 30, 31])
    np.testing.assert_array_equal(fine_times(spans, 2.0, 60.0, budget=3), [10, 10.5, 11])
    assert fine_times(np.zeros((0, 2)), 1.0, 60.0, 10).size == 0


def test_zoom_finds_a_needle_the_coarse_grid_misses():
    src = needle_source()
    cfg = ZoomConfig(coarse_candidates=128, num_spans=2, max_frames=300)
    coarse = np.round(np.linspace(0, 3599, 128))
    assert not ((coarse >= 2000) & (coarse < 2005)).any()  # single-stage at 128 never sees the needle
    res = zoom_select(src, score_dim1, 4, cfg)
    np.testing.assert_array_equal(res.timestamps, [2000, 2001, 2002, 2003])
    assert res.spans_s[0, 0] <= 2000 and res.spans_s[0, 1] >= 2005  # the best span holds the needle
    assert res.frames_encoded == len(res.pool_times) == src.frames_encoded <= cfg.max_frames
    assert np.all(np.diff(res.pool_times) > 0) and res.pool_scores.shape == res.pool_times.shape


def test_zoom_hard_cap_and_no_double_encoding():
    src = needle_source()
    cfg = ZoomConfig(coarse_candidates=128, num_spans=4, max_frames=150)
    res = zoom_select(src, score_dim1, 4, cfg)
    assert res.frames_encoded == 150  # 128 coarse + 22 fine, never more
    again = zoom_select(src, score_dim1, 4, cfg)
    assert again.frames_encoded == 0  # every frame of the same zoom was encoded already


def test_zoom_suppression_moves_away_from_inspected_spans():
    src = needle_source()
    first = zoom_select(src, score_dim1, 4, ZoomConfig(num_spans=1))
    second = zoom_select(src, score_dim1, 4, ZoomConfig(num_spans=1), suppress_s=first.spans_s)
    lo, hi = first.spans_s[0]
    assert lo <= 2000 and hi >= 2005
    assert not ((second.timestamps >= lo) & (second.timestamps < hi)).any()
    centre = second.spans_s[0].mean()
    assert not lo <= centre < hi  # the next span opens around a candidate outside the inspected one


def test_demote_scores_keeps_them_finite_and_last():
    s = demote_scores(torch.tensor([3.0, 1.0, 2.0]), np.array([True, False, False]))
    assert torch.isfinite(s).all() and int(s.argmin()) == 0 and s[1:].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("kwargs, match", [
    ({"coarse_candidates": 0}, "coarse_candidates"),
    ({"num_spans": 1.5}, "num_spans"),
    ({"fine_fps": 0}, "fine_fps"),
    ({"span_s": -1.0}, "span_s"),
    ({"coarse_candidates": 128, "max_frames": 64}, "max_frames"),
])
def test_zoom_config_errors(kwargs, match):
    with pytest.raises(ZoomConfigError, match=match):
        ZoomConfig(**kwargs)


def test_zoom_refuses_uniform_and_off_grid_times():
    with pytest.raises(ZoomConfigError, match="scored method"):
        zoom_select(needle_source(), score_dim1, 4, method="uniform")
    with pytest.raises(ValueError, match="not a point of this feature grid"):
        needle_source().features_at(np.array([0.5]))


def test_video_source_matches_grid_features_and_caches(short_video, tiny_encoder, tmp_path):
    cache = FeatureCache(tmp_path / "c")
    src = VideoFeatureSource(short_video, tiny_encoder, cache)
    assert src.duration_s == pytest.approx(20.0)
    got = src.features_at(np.array([3.0, 1.0, 3.0]))
    assert src.frames_encoded == 2  # 3.0 asked twice, encoded once
    grid = video_features(short_video, tiny_encoder, fps=1.0, cache=None)
    torch.testing.assert_close(got, grid.features[[3, 1, 3]])
    src.features_at(np.array([1.0, 5.0]))
    assert src.frames_encoded == 3
    fresh = VideoFeatureSource(short_video, tiny_encoder, cache)  # a later question: rows come from the cache
    torch.testing.assert_close(fresh.features_at(np.array([5.0, 1.0, 3.0])), grid.features[[5, 1, 3]])
    assert fresh.frames_encoded == 0


def test_selector_zoom_strategy(short_video, tiny_encoder, tmp_path):
    sel = TSPOSelector(encoder=tiny_encoder, cache=FeatureCache(tmp_path / "c"))
    cfg = ZoomConfig(coarse_candidates=5, num_spans=2, max_frames=12)
    res = sel.select(short_video, "What colour is the square?", 4, strategy="zoom", zoom=cfg)
    assert res.strategy == "zoom" and len(res.timestamps) == 4 and res.zoom.frames_encoded <= 12
    assert res.zoom.spans_s.shape[1] == 2
    assert res.num_candidates == len(res.candidate_timestamps) == res.zoom.frames_encoded
    np.testing.assert_allclose(res.timestamps, res.indices / 4.0)  # 4 fps source: frame = 4 t
    np.testing.assert_array_equal(res.timestamps, res.candidate_timestamps[res.positions])
    d = json.loads(json.dumps(res.to_dict()))
    assert d["strategy"] == "zoom" and d["frames_encoded"] == res.zoom.frames_encoded and len(d["spans_s"]) >= 1
    same = select_frames(short_video, "What colour is the square?", 4, selector=sel, strategy="zoom", zoom=cfg)
    np.testing.assert_array_equal(same.indices, res.indices)
    assert same.zoom.frames_encoded == 0  # every frame came from the point cache
    single = sel.select(short_video, "What colour is the square?", 4)
    assert single.strategy == "single" and single.zoom is None and "strategy" not in single.to_dict()
    with pytest.raises(ValueError, match="unknown strategy"):
        sel.select(short_video, "q", 4, strategy="pyramid")


def test_pop_zoom_knobs_takes_only_the_zoom_names():
    from tspo.selection.zoom_config import pop_zoom_knobs

    kwargs = {"coarse_candidates": 8, "span_seconds": 3.0, "max_frames_encoded": 20, "pretrained": "m"}
    assert pop_zoom_knobs(kwargs) == ZoomConfig(coarse_candidates=8, span_s=3.0, max_frames=20)
    assert kwargs == {"pretrained": "m"}  # what is left builds the wrapped model
    assert pop_zoom_knobs({}) == ZoomConfig()
    with pytest.raises(ValueError, match="max_frames"):
        pop_zoom_knobs({"coarse_candidates": 64, "max_frames_encoded": 10})


def test_selection_flat_trace_names_still_read_with_a_warning(short_video, tiny_encoder, tmp_path):
    """tspo <= 0.5 code read sel.spans_s / sel.frames_encoded / sel.clip_spans_s: they still answer, from the
    nested traces, with a DeprecationWarning naming the new place; an unknown name stays an AttributeError."""
    sel = TSPOSelector(encoder=tiny_encoder, cache=FeatureCache(tmp_path / "c"))
    zoomed = sel.select(short_video, "What colour is the square?", 3, strategy="zoom",
                        zoom=ZoomConfig(coarse_candidates=5, num_spans=2, max_frames=12))
    single = sel.select(short_video, "What colour is the square?", 3)
    with pytest.warns(DeprecationWarning, match=r"Selection\.zoom\.frames_encoded"):
        assert zoomed.frames_encoded == zoomed.zoom.frames_encoded > 0
    with pytest.warns(DeprecationWarning, match=r"Selection\.zoom\.spans_s"):
        np.testing.assert_array_equal(zoomed.spans_s, zoomed.zoom.spans_s)
    with pytest.warns(DeprecationWarning, match=r"Selection\.clips\.spans_s"):
        assert single.clip_spans_s is None
    assert (zoomed.strategy, single.strategy, single.unit) == ("zoom", "single", "frame")
    with pytest.raises(AttributeError, match="no_such"):
        _ = single.no_such
