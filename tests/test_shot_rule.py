"""The ``shot`` rule: temporal NMS whose windows stop at shot cuts (cuts from the features), so back-to-back
appearances each get a pick before any gets a second; every entry point hands it the features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tspo.agents import FilterAgent, get_method, select_nms
from tspo.agents.rules import shot_ids
from tspo.cli import main as tspo_main
from tspo.selection.clips import clips_from_scores
from tspo.selection.selector import TSPOSelector, select_frames
from tspo.settings import DEFAULT_CUT_DISTANCE, SelectionSettings


def _shots_features(lengths: list[int], dim: int = 8, seed: int = 0) -> torch.Tensor:
    """Features [T, D] of back-to-back shots: one random direction per shot, a little noise per frame."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randn(dim, generator=g).expand(n, dim) + 0.01 * torch.randn(n, dim, generator=g) for n in lengths]
    return torch.cat(rows)


def test_shot_ids_count_the_cuts():
    feats = _shots_features([3, 2, 4])
    assert shot_ids(feats).tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert shot_ids(torch.stack([feats, feats.flip(0)])).shape == (2, 9)          # batched rows
    assert shot_ids(feats, cut_distance=2.0).tolist() == [0] * 9                  # nothing is that far: one shot
    assert shot_ids(feats[:1]).tolist() == [0]
    with pytest.raises(ValueError, match=r"cut_distance must be a cosine distance in \[0, 2\]"):
        shot_ids(feats, cut_distance=-0.1)
    with pytest.raises(ValueError, match=r"features must be \[\.\.\., T, D\]"):
        shot_ids(torch.ones(5))
    assert 0.0 < DEFAULT_CUT_DISTANCE < 1.0


def test_a_picks_window_stops_at_its_shots_cuts():
    # shots A (frames 0-5), B (6-7, a short appearance), C (8-12): a 3-frame window around A's best frame
    # swallows B; stopped at A's cut it does not, so each appearance gets a pick
    scores = torch.tensor([1.0, 2, 3, 4, 5, 9, 8, 2, 1, 1, 7, 1, 1])
    shots = torch.tensor([0] * 6 + [1] * 2 + [2] * 5)
    assert select_nms(scores, 3, 3).tolist() == [1, 5, 10]                       # B lost to A's window
    assert select_nms(scores, 3, 3, shots).tolist() == [5, 6, 10]
    assert select_nms(scores, 4, 3, shots).tolist() == [1, 5, 6, 10]             # then the best frame left free
    assert select_nms(scores, 4, 0, shots).tolist() == [4, 5, 6, 10]             # radius 0: plain top-k, shots ignored
    # two alike appearances back to back with no cut between them (one shot): the window, not the whole
    # shot, bounds what a pick suppresses, so the second one still gets a pick
    alike = torch.tensor([9.0, 8, 7, 6, 5, 8.5, 7, 6, 5, 4, 3, 3, 3, 3])
    one_cut = torch.tensor([0] * 10 + [1] * 4)
    assert select_nms(alike, 2, 3, one_cut).tolist() == [0, 5]
    no_cut = torch.zeros(13, dtype=torch.long)                                   # one shot: plain NMS
    assert select_nms(scores, 3, 3, no_cut).tolist() == select_nms(scores, 3, 3).tolist()
    rows = torch.stack([scores, scores])
    assert select_nms(rows, 3, torch.tensor([0, 3]), torch.stack([shots, shots])).tolist() == [[5, 6, 10], [5, 6, 10]]
    assert select_nms(rows, 4, torch.tensor([0, 3]), shots).tolist() == [[4, 5, 6, 10], [1, 5, 6, 10]]
    with pytest.raises(ValueError, match="shots must be int64"):
        select_nms(scores, 3, 1, shots[:-1])
    with pytest.raises(ValueError, match="shots must be int64"):
        select_nms(scores, 3, 1, shots.float())


def test_the_shot_method_needs_features_and_matches_the_rule():
    feats = _shots_features([6, 2, 5])
    scores = torch.tensor([1.0, 2, 3, 4, 5, 9, 8, 2, 1, 1, 7, 1, 1])
    m = get_method("clip+shot")
    assert m.needs_features and not get_method("clip+nms").needs_features
    assert m.pick(scores, 13, 3, 3, features=feats).tolist() == [5, 6, 10]
    assert m.pick(scores, 13, 3, features=feats).tolist() == [5, 6, 10]          # the default radius is 3 frames
    with pytest.raises(ValueError, match="pass features"):
        m.pick(scores, 13, 3)
    with pytest.raises(ValueError, match="must be the scores' shape"):
        m.pick(scores, 13, 3, features=feats[:-1])
    clips = clips_from_scores(scores.numpy(), 3, 3, "clip+shot", radius=3, features=feats)
    assert sorted(clips.anchors.tolist()) == [5, 6, 10]


def test_tspo_shot_takes_the_set_heads_choice(tiny_encoder, short_video):
    """Through the public API: a filter selector's ``tspo+shot`` suppresses by shot where its set head says
    so, and is plain top-k where it does not (motion: several picks inside one event)."""
    agent = FilterAgent(dim=tiny_encoder.dim, nms_radius=1).eval()
    sel = TSPOSelector(encoder=tiny_encoder, agent=agent, cache=False, num_frames=4)
    q = "How many times does a circle appear?"
    with torch.no_grad():
        agent.set_head.weight.zero_()
        agent.set_head.bias.fill_(-1.0)                                          # keep: top-k
    keep = select_frames(short_video, q, selector=sel, method="tspo+shot")
    assert keep.method == "tspo+shot"
    np.testing.assert_array_equal(keep.positions, select_frames(short_video, q, selector=sel, method="tspo").positions)
    with torch.no_grad():
        agent.set_head.bias.fill_(1.0)                                           # suppress: one pick per shot first
    spread = select_frames(short_video, q, selector=sel, method="tspo+shot")
    feats = sel.features(short_video).features
    expected = select_nms(torch.as_tensor(spread.scores), 4, 1, shot_ids(feats))
    np.testing.assert_array_equal(spread.positions, expected.numpy())


def test_a_selector_stores_its_cut_distance_and_every_entry_point_uses_it(tiny_encoder, short_video, tmp_path,
                                                                          capsys):
    """The cut distance is a selection setting: validated, saved in config.json only when set, read back by
    from_pretrained, and used by select_frames, the clip unit and `tspo select --cut-distance`."""
    assert SelectionSettings().cut_distance is None and "cut_distance" not in SelectionSettings().to_config()
    assert 0.0 < DEFAULT_CUT_DISTANCE < 1.0
    for bad in (-0.1, 2.5, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match=r"cut_distance must be a cosine distance in \[0, 2\]"):
            SelectionSettings(cut_distance=bad)
    q = "How many times does a circle appear?"
    agent = FilterAgent(dim=tiny_encoder.dim, nms_radius=1).eval()
    with torch.no_grad():
        agent.set_head.bias.fill_(1.0)                                           # suppress every question
    sel = TSPOSelector(encoder=tiny_encoder, agent=agent, cache=False, num_frames=4,
                       settings=SelectionSettings(cut_distance=2.0))             # no cut anywhere: one shot
    path = sel.save_pretrained(tmp_path / "sel")
    back = TSPOSelector.from_pretrained(path, encoder=tiny_encoder, cache=False)
    assert back.settings.cut_distance == 2.0 == back.config["cut_distance"]
    one_shot = select_frames(short_video, q, selector=back)
    nms = select_frames(short_video, q, selector=back, method="tspo+nms")
    # one shot: no cut stops a window -> exactly tspo+nms's picks (the same radius, from the set head)
    np.testing.assert_array_equal(one_shot.positions, nms.positions)
    default = TSPOSelector(encoder=tiny_encoder, agent=agent, cache=False, num_frames=4)
    feats = default.features(short_video).features
    expected = select_nms(torch.as_tensor(one_shot.scores), 4, 1, shot_ids(feats)).numpy()
    np.testing.assert_array_equal(select_frames(short_video, q, selector=default).positions, expected)
    clip_unit = back.select(short_video, q, unit="clip", token_budget=2000, model="llava-onevision")
    assert clip_unit.method == "tspo+shot"
    # the command line sets it on any selector, and refuses a bad one by name
    base = ["select", str(short_video), q, "--selector", str(path), "--json"]
    assert tspo_main([*base, "--cut-distance", "0.1"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["indices"] == select_frames(short_video, q, selector=default).indices.tolist()
    assert tspo_main([*base, "--cut-distance", "3"]) == 2
    assert "cut_distance must be a cosine distance" in capsys.readouterr().err
