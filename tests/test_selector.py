"""select_frames / TSPOSelector: selection contract, cache reuse, persistence, baselines, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import tspo
from tspo import Selection, TSPOSelector, select_frames
from tspo.agents import TemporalAgent, select_aks, select_bin_max, select_topk, select_uniform
from tspo.features.cache import FeatureCache, video_features
from tspo.selection.selector import SelectorConfigError


@pytest.fixture()
def selector(tiny_encoder, tmp_path):
    return TSPOSelector(encoder=tiny_encoder, cache=FeatureCache(tmp_path / "cache"))


def test_select_frames_contract(short_video, selector):
    res = select_frames(short_video, "What colour is the square?", num_frames=5, selector=selector, return_frames=True)
    assert isinstance(res, Selection) and res.method == "tspo" and res.num_candidates == 20
    assert res.indices.dtype == np.int64 and len(res.indices) == 5
    assert np.all(np.diff(res.indices) > 0)  # ascending, unique
    np.testing.assert_allclose(res.timestamps, res.indices / 4.0)  # 4 fps source
    assert res.scores.shape == (20,) and res.candidate_timestamps.shape == (20,)
    assert res.frames.shape == (5, 48, 64, 3)  # native size for the downstream MLLM
    # deterministic top-k of the scores
    np.testing.assert_array_equal(res.positions, np.sort(np.argsort(-res.scores, kind="stable")[:5]))
    again = select_frames(short_video, "What colour is the square?", num_frames=5, selector=selector)
    np.testing.assert_array_equal(again.indices, res.indices)


def test_second_question_hits_the_cache(short_video, selector, monkeypatch):
    selector.select(short_video, "first question", 4)
    assert selector.cache.misses == 1

    def boom(*a, **k):  # a cache hit must neither decode nor encode frames
        raise AssertionError("decoded or encoded again")

    monkeypatch.setattr("tspo.features.cache.encode_candidates", boom)
    monkeypatch.setattr(selector.encoder, "encode_frames", boom)
    monkeypatch.setattr("tspo.video._decode", boom)
    res = selector.select(short_video, "a different question", 4)
    assert selector.cache.hits == 1 and len(res.indices) == 4


def test_cache_is_keyed_by_content_and_settings(short_video, tiny_encoder, tmp_path):
    cache = FeatureCache(tmp_path / "c")
    a = video_features(short_video, tiny_encoder, fps=1.0, cache=cache)
    b = video_features(short_video, tiny_encoder, fps=2.0, cache=cache)
    assert cache.misses == 2 and len(a) == 20 and len(b) == 40
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(short_video.read_bytes())
    c = video_features(copy, tiny_encoder, fps=1.0, cache=cache)  # same content, other path: a hit
    assert cache.hits == 1
    torch.testing.assert_close(c.features, a.features)
    assert not list((tmp_path / "c").rglob("*.tmp"))  # atomic writes leave no temporaries


def test_uniform_and_baselines_share_the_interface(short_video, selector):
    for method in ("uniform", "clip", "bin-max", "aks"):
        res = selector.select(short_video, "q?", 5, method=method)
        assert res.method == method and np.all(np.diff(res.indices) > 0) and 1 <= len(res.indices) <= 5
    uni = selector.select(short_video, "q?", 5, method="uniform")
    np.testing.assert_array_equal(uni.positions, [0, 4, 9, 14, 19])
    assert uni.scores is None


def test_untrained_tspo_equals_clip_ranking(short_video, selector):
    a = selector.select(short_video, "red square", 6, method="tspo")
    b = selector.select(short_video, "red square", 6, method="clip")
    np.testing.assert_array_equal(a.indices, b.indices)


def test_k_larger_than_candidates_is_clipped_with_warning(short_video, selector):
    with pytest.warns(UserWarning, match="only 20 candidates"):
        res = selector.select(short_video, "q?", 50)
    assert len(res.indices) == 20


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"question": "   "}, "question must be a non-empty string"),
        ({"question": ""}, "question must be a non-empty string"),
        ({"num_frames": 0}, "num_frames"),
        ({"num_frames": -3}, "num_frames"),
        ({"fps": 0}, "fps"),
        ({"fps": -1.0}, "fps"),
        ({"method": "magic"}, "unknown selection method"),
    ],
)
def test_bad_arguments(short_video, selector, kwargs, match):
    args = {"question": "q?", "num_frames": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        selector.select(short_video, **args)


def test_save_and_load_round_trip(short_video, tiny_encoder, tmp_path):
    agent = TemporalAgent(dim=tiny_encoder.dim)
    with torch.no_grad():
        for p in agent.parameters():
            p.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
    sel = TSPOSelector(encoder=tiny_encoder, agent=agent, cache=False, num_frames=6)
    out = sel.save_pretrained(tmp_path / "sel", extra_config={"trained_on": "unit test"})
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["encoder"] == "tiny-random" and cfg["agent"] == {"dim": 64, "window": 12, "heads": 8}
    loaded = TSPOSelector.from_pretrained(out, cache=False)
    assert loaded.num_frames == 6 and loaded.extra_config["trained_on"] == "unit test"
    a = sel.select(short_video, "where is the bar?", 6)
    b = loaded.select(short_video, "where is the bar?")
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_bad_selector_directories(tmp_path, tiny_encoder):
    with pytest.raises(SelectorConfigError, match="not a directory"):
        TSPOSelector.from_pretrained(tmp_path / "missing" / "dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SelectorConfigError, match="no config.json"):
        TSPOSelector.from_pretrained(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(SelectorConfigError, match="not valid JSON"):
        TSPOSelector.from_pretrained(bad)
    (bad / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SelectorConfigError, match="not a tspo selector config"):
        TSPOSelector.from_pretrained(bad)
    (bad / "config.json").write_text(json.dumps({"format": "tspo-selector", "encoder": "tiny-random",
                                                  "agent": {"dim": 64, "window": 0, "heads": 8}}))
    with pytest.raises(SelectorConfigError, match="agent.window"):
        TSPOSelector.from_pretrained(bad)
    # weights trained for a 768-d encoder, loaded on the 64-d tiny encoder
    big = TSPOSelector(encoder=tiny_encoder, cache=False)
    big.agent = TemporalAgent(dim=768)
    big.save_pretrained(tmp_path / "big")
    with pytest.raises(SelectorConfigError, match="dim 768 does not match encoder"):
        TSPOSelector.from_pretrained(tmp_path / "big", cache=False)
    ok = TSPOSelector(encoder=tiny_encoder, cache=False).save_pretrained(tmp_path / "ok")
    (ok / "model.safetensors").unlink()
    with pytest.raises(SelectorConfigError, match="no model.safetensors"):
        TSPOSelector.from_pretrained(ok)


def test_lazy_public_names():
    assert tspo.select_frames is select_frames and tspo.TSPOSelector is TSPOSelector
    with pytest.raises(AttributeError):
        tspo.not_a_name  # noqa: B018


# -- selection rules ----------------------------------------------------------------------------

def test_uniform_rule():
    np.testing.assert_array_equal(select_uniform(10, 4), [0, 3, 6, 9])
    np.testing.assert_array_equal(select_uniform(5, 5), [0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="larger than the number of candidates"):
        select_uniform(3, 4)
    with pytest.raises(ValueError, match="positive int"):
        select_uniform(3, 0)


def test_topk_and_bin_max_rules():
    s = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.95, 0.0])
    np.testing.assert_array_equal(select_topk(s, 3), [1, 3, 6])
    np.testing.assert_array_equal(select_bin_max(s, 4), [1, 3, 6, 7])  # anchors 0,2,5,7 (test_baselines_reference)
    with pytest.raises(ValueError, match="NaN"):
        select_topk(torch.tensor([0.1, float("nan")]), 1)


def test_aks_rule():
    # a single peaked segment: the whole video stands out at depth 0 -> plain top-k
    s = torch.zeros(64)
    s[30:34] = 1.0
    np.testing.assert_array_equal(select_aks(s, 4), [30, 31, 32, 33])
    # flat scores never stand out: split to max_depth; each leaf gives int(k / 2^d) frames
    flat = torch.linspace(0, 1e-3, 64)  # almost flat -> normalised to a ramp of small top-mean gaps?
    picks = select_aks(torch.ones(64), 8, max_depth=3)
    assert len(picks) == 8 and np.all(np.diff(picks.numpy()) > 0)
    assert len(np.unique(picks.numpy() // 8)) == 8  # one per leaf of depth 3 (8 leaves of 8)
    assert len(select_aks(flat, 8)) <= 8
    np.testing.assert_array_equal(select_aks(torch.rand(5), 8), np.arange(5))  # T < k: everything


def test_topk_rule_is_batched_and_breaks_ties_by_time():
    from tspo.agents import GumbelTopK

    s = torch.tensor([[0.5, 0.9, 0.9, 0.9, 0.1], [1.0, 1.0, 1.0, 1.0, 1.0]])
    expected = torch.tensor([[1, 2], [0, 1]])  # ties: the earlier candidate first
    torch.testing.assert_close(select_topk(s, 2), expected)
    for row in range(2):
        torch.testing.assert_close(select_topk(s[row], 2), expected[row])
    torch.testing.assert_close(GumbelTopK(2).greedy(s), expected)  # training's greedy pick = inference's


def test_select_from_features_picks_inspected_candidates_last(short_video, selector):
    """Reflection's suppression: candidates already inspected are picked only after every other one,
    for scored and unscored rules alike; a mask of the wrong length is refused by name."""
    feats = selector.features(short_video).features
    num = feats.shape[0]
    first, _ = selector.select_from_features(feats, "a red ball", 2, "clip")
    blocked = np.zeros(num, dtype=bool)
    blocked[first.numpy()] = True
    again, _ = selector.select_from_features(feats, "a red ball", 2, "clip", suppress=blocked)
    assert not blocked[again.numpy()].any()
    left = np.ones(num, dtype=bool)
    left[:2] = False                      # two candidates not yet inspected: k is clipped to them
    rest, scores = selector.select_from_features(feats, "a red ball", 4, "uniform", suppress=left)
    assert rest.tolist() == [0, 1] and scores is None
    with pytest.raises(ValueError, match=r"suppress must be bool\[T\]"):
        selector.select_from_features(feats, "a red ball", 2, "clip", suppress=np.zeros(num + 1, dtype=bool))
