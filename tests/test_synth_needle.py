"""Needle composer: pseudo-labels equal the rendered ground truth, virtual samples decode to the
right frames, feature-space composition equals encoding the materialized video."""

import json

import numpy as np
import pytest

from tspo.cli.synth import main as synth_main
from tspo.data_synth import (
    NeedleConfig,
    SynthError,
    compose_needles,
    event_frames,
    events_from_extra,
    load_manifest,
    locate,
    merge_spans,
    render_dataset,
    write_manifest,
)
from tspo.data_synth.needle import PoolVideo, compose_needle
from tspo.data_synth.render import scene_frames
from tspo.features.cache import CompositionError, compose_features, encode_candidates, video_features

FPS_R, SIZE = 2, 32


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    root = tmp_path_factory.mktemp("pools")
    targets = render_dataset(root / "t", 3, seed=1, min_seconds=12, max_seconds=16, fps=FPS_R, size=SIZE,
                             progress=False)
    write_manifest(root / "t" / "manifest.jsonl", targets)
    hay = render_dataset(root / "d", 2, seed=2, family="distractor", min_seconds=60, max_seconds=80, fps=FPS_R,
                         size=SIZE, progress=False)
    write_manifest(root / "d" / "manifest.jsonl", hay)
    return root, {s.video: s for s in targets}, {s.video: s for s in hay}


@pytest.fixture(scope="module")
def needles(pools):
    root, _, _ = pools
    def args(out):
        return ["needle", "--targets", str(root / "t" / "manifest.jsonl"), "--distractors", str(root / "d"),
                "--out", str(out), "--num", "4", "--min-minutes", "1", "--max-minutes", "2", "--seed", "3",
                "--segment-seconds", "5", "15", "--target-segment-seconds", "3", "6"]

    out = root / "n"
    assert synth_main(args(out)) == 0
    assert synth_main(args(root / "n2")) == 0  # same seed, another directory
    return load_manifest(out / "manifest.jsonl"), load_manifest(root / "n2" / "manifest.jsonl")


def _check_ground_truth(s, targets) -> None:
    """Per second of the composed timeline: inside a target span == target material on screen, and
    inside an evidence span == one of the target's key events on screen (exact, from the render)."""
    roles = s.extra["segment_roles"]
    target = targets[next(seg["source"] for seg, r in zip(s.video, roles) if r == "target")]
    assert (s.question, s.options, s.answer) == (target.question, target.options, target.answer)
    events = events_from_extra(target.extra)
    key = set(target.extra["key_events"])
    mids = np.arange(int(s.duration_s)) + 0.5                        # every second of the timeline
    seg, src_t = locate(s.video, mids)
    in_target = np.array([any(a <= t < b for a, b in s.target_spans_s) for t in mids])
    in_evidence = np.array([any(a <= t < b for a, b in s.evidence_spans_s) for t in mids])
    is_target = np.array([roles[i] == "target" for i in seg])
    assert (in_target == is_target).all()
    truth_evidence = np.array([
        is_target[n] and next(i for i, e in enumerate(events) if e.start_s <= src_t[n] < e.end_s) in key
        for n in range(len(mids))])
    assert (in_evidence == truth_evidence).all()
    per_rep = sum(b - a for a, b in target.evidence_spans_s)
    assert in_evidence.sum() == per_rep * s.extra["repeats"]       # every repetition carries its evidence
    # spans are merged: sorted, none touching another
    for spans in (s.target_spans_s, s.evidence_spans_s):
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    # every repetition's segments together cover the whole clip exactly once
    clip_steps = round(target.duration_s)                           # rendered clips are whole seconds
    for r in range(s.extra["repeats"]):
        cover = sorted((g["start_s"], g["end_s"]) for g, rep in zip(s.video, s.extra["segment_repeat"]) if rep == r)
        assert cover[0][0] == 0 and cover[-1][1] == clip_steps
        assert all(b == a for (_, b), (a, _) in zip(cover, cover[1:]))
    cuts = np.array([[g["start_s"], g["end_s"]] for g in s.video])
    assert np.allclose(cuts, np.round(cuts))                         # cuts on the 1/fps grid


def test_pseudo_labels_match_rendered_ground_truth(pools, needles):
    _, targets, _ = pools
    samples, again = needles
    assert [s.video for s in samples] == [s.video for s in again]  # seeded: same run, same manifest
    for s in samples:
        assert s.kind == "needle" and 60 <= s.duration_s <= 120 and s.extra["target_order"] == "shuffle"
        _check_ground_truth(s, targets)


@pytest.mark.parametrize("order", ["shuffle", "ordered", "contiguous"])
def test_target_is_cut_into_segments_and_shuffled(pools, order):
    """Each repetition is cut into grid-aligned segments of the asked length; "shuffle" scatters them
    (some land apart and out of order), "ordered" keeps each repetition's order, "contiguous" keeps
    each repetition in one stretch; the labels stay exact in every mode."""
    root, targets, _ = pools
    cfg = NeedleConfig(1, 2, repeats=(2, 3), target_fraction=None, segment_seconds=(5, 15),
                       target_segment_seconds=(2, 4), target_order=order)
    hay = [s.video for s in load_manifest(root / "d" / "manifest.jsonl")]
    samples, _ = compose_needles(load_manifest(root / "t" / "manifest.jsonl"), hay, 6, seed=7, config=cfg,
                                 progress=False)
    out_of_order = apart = 0
    for s in samples:
        _check_ground_truth(s, targets)
        reps = np.array(s.extra["segment_repeat"])
        target_segs = [g for g, r in zip(s.video, reps) if r >= 0]
        lengths = [g["end_s"] - g["start_s"] for g in target_segs]
        assert max(lengths) <= 4 and len(target_segs) >= 3 * s.extra["repeats"]  # 12-16 s clips in 2-4 s cuts
        for r in range(s.extra["repeats"]):
            where = np.flatnonzero(reps == r)
            starts = [s.video[i]["start_s"] for i in where]
            out_of_order += starts != sorted(starts)
            apart += bool(np.any(np.diff(where) > 1))
            if order == "contiguous":
                assert (np.diff(where) == 1).all() and starts == sorted(starts)
            if order == "ordered":
                assert starts == sorted(starts)
        if order == "contiguous":
            assert len(s.target_spans_s) <= s.extra["repeats"]
    if order == "shuffle":
        assert out_of_order > 0 and apart > 0
    if order == "ordered":
        assert apart > 0


def test_merge_spans():
    assert merge_spans([[7, 8], [2, 5], [0, 2], [4, 6]]) == [[0.0, 6.0], [7.0, 8.0]]
    assert merge_spans([]) == []


def _expected_frame(seg, src_t, targets, hay):
    """The frame the renderer drew at ``src_t`` seconds of ``seg``'s source."""
    src = seg["source"]
    n = int(np.floor(src_t * FPS_R + 1e-6))
    if src in targets:
        ev = next(e for e in events_from_extra(targets[src].extra) if e.start_s <= src_t < e.end_s)
        return event_frames(ev, FPS_R, SIZE)[n - ev.start_s * FPS_R]
    start = 0
    for sc in hay[src].extra["scenes"]:
        if start <= src_t < start + sc["seconds"]:
            return scene_frames(sc, FPS_R, SIZE)[n - start * FPS_R]
        start += sc["seconds"]
    raise AssertionError("time past the source")


def test_virtual_samples_decode_to_the_right_frames(pools, needles):
    from tspo.video import sample_candidates

    _, targets, hay = pools
    s = needles[0][0]
    cands = sample_candidates(s.video, fps=1.0, size=None)
    assert len(cands) == int(s.duration_s)
    seg, src_t = locate(s.video, cands.timestamps_s)
    assert (seg == cands.segment_ids).all()
    expected = np.stack([_expected_frame(s.video[g], t, targets, hay) for g, t in zip(seg, src_t)])
    err = np.abs(cands.frames.astype(np.float32) - expected).mean(axis=(1, 2, 3))
    assert err.max() < 20.0 and err.mean() < 6.0   # H.264 noise only (fine checkerboards at 32 px cost most)
    # a wrong mapping (shifted by one second) is far off: the check can fail
    shifted = np.abs(cands.frames[1:].astype(np.float32) - expected[:-1]).mean(axis=(1, 2, 3))
    assert np.median(shifted) > 3 * np.median(err) + 1


def test_feature_composition_equals_encoding_the_materialized_video(pools, tmp_path):
    from tspo.features.cache import FeatureCache
    from tspo.features.encoders import load_encoder
    from tspo.selection.selector import TSPOSelector

    root, _, _ = pools
    out = tmp_path / "m"
    assert synth_main(["needle", "--targets", str(root / "t" / "manifest.jsonl"), "--distractors",
                       str(root / "d" / "manifest.jsonl"), "--out", str(out), "--num", "1", "--min-minutes",
                       "1", "--max-minutes", "1.5", "--seed", "5", "--segment-seconds", "5", "15",
                       "--materialize"]) == 0
    s = load_manifest(out / "manifest.jsonl")[0]
    assert s.video.endswith(".mp4")
    segments = [{**g, "source": str((out / g["source"]).resolve())} for g in s.extra["segments"]]
    enc = load_encoder("tiny-random")
    cache = FeatureCache(tmp_path / "cache")
    for cap in (None, 32):
        composed = video_features(segments, enc, fps=1.0, max_candidates=cap, cache=cache)
        encoded = video_features(s.video, enc, fps=1.0, max_candidates=cap)
        assert composed.features.shape == encoded.features.shape == (cap or int(s.duration_s), enc.dim)
        np.testing.assert_allclose(composed.timestamps_s, encoded.timestamps_s)
        torch_diff = (composed.features - encoded.features).abs().max().item()
        assert torch_diff < 1e-4
    misses = cache.misses
    video_features(segments, enc, fps=1.0, max_candidates=16, cache=cache)
    # inference takes the same route as training and eval: the selector composes from the same entries
    TSPOSelector(encoder=enc, cache=cache).features(segments, fps=1.0, max_candidates=8)
    assert cache.misses == misses                                        # sources encoded once, then reused
    off_grid = [{**segments[0], "start_s": segments[0]["start_s"] + 0.5}]
    with pytest.raises(CompositionError, match="not a multiple of 1/fps"):
        compose_features(off_grid, {}, fps=1.0)
    decoded = video_features(off_grid, enc, fps=1.0, max_candidates=8, cache=cache)   # off the grid: decoded
    assert (decoded.features - encode_candidates(off_grid, enc, 1.0, 8).features).abs().max().item() < 1e-5


def test_paper_shaped_defaults():
    """Defaults: 10-60 min, target material ~12-25% (16-32 of 128 candidates), 1-4 repetitions."""
    from tspo.video import candidate_times

    cfg = NeedleConfig()
    rng = np.random.default_rng(0)
    hay = [PoolVideo(f"h{i}.mp4", 600) for i in range(5)]
    from tspo.data_synth import Sample
    for clip in (60, 120, 180):
        t = PoolVideo("t.mp4", clip, Sample("t", "t.mp4", "Q?", ["a", "b"], "A", evidence_spans_s=[[10.0, 14.0]],
                                            duration_s=float(clip)))
        for i in range(30):
            s = compose_needle(t, hay, rng, cfg, f"n{i}")
            assert 600 <= s.duration_s <= 3600 and 1 <= s.extra["repeats"] <= 4
            assert sum(b - a for a, b in s.target_spans_s) == s.extra["repeats"] * clip
            if clip >= 120:
                assert 0.12 - 1e-9 <= s.extra["target_fraction"] <= 0.25 + 1e-9
                times = candidate_times(s.duration_s, 1.0, 128)
                inside = sum(any(a <= x < b for a, b in s.target_spans_s) for x in times)
                assert 12 <= inside <= 36
            assert sum(b - a for a, b in s.evidence_spans_s) == 4 * s.extra["repeats"]
            pieces = [g["end_s"] - g["start_s"] for g, r in zip(s.video, s.extra["segment_roles"]) if r == "target"]
            assert max(pieces) <= 30 and len(pieces) >= s.extra["repeats"] * -(-clip // 30)  # default 10-30 s cuts


def test_bad_input_is_skipped_or_refused(pools, tmp_path, capsys):
    root, targets, _ = pools
    good = load_manifest(root / "t" / "manifest.jsonl")
    gone = good[0].__class__(**{**good[0].__dict__, "id": "gone", "video": str(tmp_path / "gone.mp4")})
    hay_dir = tmp_path / "hay"
    hay_dir.mkdir()
    (hay_dir / "broken.mp4").write_bytes(b"not a video at all")
    hay = [str(hay_dir / "broken.mp4"), *sorted(load_manifest(root / "d" / "manifest.jsonl")[i].video for i in (0, 1))]
    samples, report = compose_needles([gone, *good], hay, 3, seed=0,
                                      config=NeedleConfig(1, 2, segment_seconds=(5, 15)), progress=False)
    assert len(samples) == 3 and report.num_targets == 3 and report.num_distractors == 2
    assert sorted(n for n, _ in report.skipped) == sorted(["gone", str(hay_dir / "broken.mp4")])
    assert "skipped 2 unusable source(s)" in report.summary() and "broken.mp4" in report.summary()
    with pytest.raises(SynthError, match=r"longer than --max-minutes 0.1: clip-1-"):
        compose_needles(good, hay, 1, config=NeedleConfig(0.05, 0.1), progress=False)
    for bad, match in (({"target_segment_seconds": (0, 5)}, "target_segment_seconds"),
                       ({"target_order": "random"}, "target_order must be one of")):
        with pytest.raises(SynthError, match=match):
            compose_needles(good, hay, 1, config=NeedleConfig(1, 2, **bad), progress=False)
    with pytest.raises(SynthError, match="target pool is empty"):
        compose_needles([], hay, 1, progress=False)
    with pytest.raises(SynthError, match="haystack pool is empty"):
        compose_needles(good, [], 1, progress=False)
    with pytest.raises(SynthError, match="no usable haystack video"):
        compose_needles(good, [str(hay_dir / "broken.mp4")], 1, progress=False)
    # the CLI turns these into a clear message and exit code 2, not a traceback
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = synth_main(["needle", "--targets", str(root / "t" / "manifest.jsonl"), "--distractors", str(empty),
                     "--out", str(tmp_path / "o"), "--num", "1"])
    assert rc == 2 and "haystack pool is empty" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x"}) + "\n")
    assert synth_main(["needle", "--targets", str(bad), "--distractors", str(root / "d"), "--out",
                       str(tmp_path / "o"), "--num", "1"]) == 2
    assert "line 1: field 'video': missing" in capsys.readouterr().err
