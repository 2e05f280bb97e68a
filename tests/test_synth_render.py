"""Synthetic renderer: exact ground truth, right answers, decoded frames match, haystack is different."""

import time

import av
import numpy as np
import pytest

from tspo.data_synth import (
    QUESTION_KINDS,
    RenderError,
    event_frames,
    load_manifest,
    make_clip_truth,
    probe_source,
    render_dataset,
    render_distractor,
    render_target_clip,
)
from tspo.data_synth.events import COLOURS, SHAPES
from tspo.data_synth.render import scene_frames


def _decode(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.mark.parametrize("kind", QUESTION_KINDS)
def test_every_question_has_exactly_one_right_option(kind):
    for seed in range(20):
        truth = make_clip_truth(np.random.default_rng(seed), 40, (3, 6), 4, (kind,))
        ev = truth.events
        assert [e.start_s for e in ev] == [0] + [e.end_s for e in ev[:-1]] and ev[-1].end_s == 40
        assert all(e.end_s - e.start_s >= 3 for e in ev)
        assert len(truth.options) == 4 == len(set(truth.options))
        right = truth.options["ABCD".index(truth.answer)]
        key = [ev[i] for i in truth.key_events]
        assert truth.evidence_spans_s == [[e.start_s, e.end_s] for e in key]
        others = [e for i, e in enumerate(ev) if i not in truth.key_events]
        if kind == "after":  # the question names the cue (unique); the evidence is the event after it
            cue = ev[truth.cue_events[0]]
            assert truth.key_events == [truth.cue_events[0] + 1] and right == key[0].shape
            assert [e.shape for e in ev].count(cue.shape) == 1
            continue
        assert not {e.shape for e in key} & {e.shape for e in others}  # the questioned shape is unique
        if kind == "colour":
            assert right == key[0].colour and key[0].shape in truth.question
        elif kind == "motion":
            assert right in (key[0].motion, "it stays still") and (right == "it stays still") == (key[0].motion == "still")
        elif kind == "text":
            assert right == key[0].text and all(e.text is None for e in others)
        elif kind == "order":
            assert right == f"the {key[0].colour} {key[0].shape}" and key[0].start_s < key[1].start_s
            assert f"the {key[1].colour} {key[1].shape}" in truth.options
        elif kind == "shape":
            assert right == key[0].shape and key[0].colour not in {e.colour for e in others}
        else:
            assert right == str(len(key)) and len({e.shape for e in key}) == 1


def test_seeded_and_bad_arguments(tmp_path):
    a = make_clip_truth(np.random.default_rng(5), 30)
    b = make_clip_truth(np.random.default_rng(5), 30)
    assert a == b
    with pytest.raises(RenderError, match="cannot hold two events"):
        make_clip_truth(np.random.default_rng(0), 4)
    with pytest.raises(RenderError, match="motion questions"):
        make_clip_truth(np.random.default_rng(0), 30, num_options=6, kinds=("motion",))
    with pytest.raises(RenderError, match="even number"):
        render_target_clip(tmp_path / "x.mp4", np.random.default_rng(0), 10, size=33)


def test_rendered_frames_show_the_ground_truth(tmp_path):
    path = tmp_path / "c.mp4"
    truth = render_target_clip(path, np.random.default_rng(3), 20, fps=2, size=64, kinds=("text",))
    info = probe_source(path)
    assert (info.duration_s, info.fps, info.num_frames, info.width) == (20.0, 2.0, 40, 64)
    frames = _decode(path).astype(np.float32)
    expected = np.concatenate([event_frames(e, 2, 64) for e in truth.events]).astype(np.float32)
    err = np.abs(frames - expected).mean(axis=(1, 2, 3))             # per frame, H.264 noise only
    assert err.max() < 6.0
    # ...and events differ a lot from each other, so a random encoder still sees the change
    for e1, e2 in zip(truth.events, truth.events[1:]):
        a, b = frames[e1.end_s * 2 - 1], frames[e2.start_s * 2]
        assert np.abs(a - b).mean() > 20
    key = truth.events[truth.key_events[0]]
    assert np.mean(event_frames(key, 2, 64)[0] == 255) > 0.005     # the word is drawn


def test_shapes_are_distinct_masks():
    from tspo.data_synth.events import Event
    masks = [event_frames(Event(0, 1, s, "white", "black"), 1, 64)[0, ..., 0] > 0 for s in SHAPES]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert (masks[i] != masks[j]).mean() > 0.03, (SHAPES[i], SHAPES[j])


def test_distractors_are_a_different_family(tmp_path):
    scenes = render_distractor(tmp_path / "d.mp4", np.random.default_rng(0), 30, fps=2, size=64, scene_seconds=(3, 6))
    assert sum(s["seconds"] for s in scenes) == 30
    frames = _decode(tmp_path / "d.mp4").astype(np.float32)
    expected = np.concatenate([scene_frames(s, 2, 64) for s in scenes]).astype(np.float32)
    assert np.abs(frames - expected).mean() < 8.0
    # targets: a dark solid background plus one bright solid shape -> few distinct colours per frame;
    # haystack: textures -> many. A simple statistic separates the families.
    target = render_target_clip(tmp_path / "t.mp4", np.random.default_rng(1), 30, fps=2, size=64)
    t_frames = np.concatenate([event_frames(e, 2, 64) for e in target.events])
    t_colours = [len(np.unique(f.reshape(-1, 3), axis=0)) for f in t_frames[::4]]
    d_colours = [len(np.unique(f.reshape(-1, 3), axis=0)) for f in expected.astype(np.uint8)[::4]]
    assert max(t_colours) <= 3 < 20 < min(d_colours)
    # and no haystack pixel has a target shape's colour
    bright = np.array(list(COLOURS.values()), np.float32)
    dist = np.abs(expected[::8].reshape(-1, 1, 3) - bright[None]).max(axis=2)
    assert (dist < 3).any(axis=1).mean() < 0.01


def test_render_dataset_manifest_and_speed(tmp_path):
    t0 = time.perf_counter()
    render_target_clip(tmp_path / "long.mp4", np.random.default_rng(0), 600, fps=2, size=64)
    assert time.perf_counter() - t0 < 30  # a 10-minute low-res video in seconds (generous for shared CI)
    samples = render_dataset(tmp_path / "ds", 3, seed=7, min_seconds=10, max_seconds=14, fps=2, size=64,
                             progress=False)
    from tspo.data_synth import write_manifest
    back = load_manifest(write_manifest(tmp_path / "ds" / "manifest.jsonl", samples))
    assert [s.id for s in back] == ["clip-7-00000", "clip-7-00001", "clip-7-00002"]
    for s in back:
        assert 10 <= s.duration_s <= 14 and s.kind == "general" and s.evidence_spans_s
        assert probe_source(s.video).duration_s == s.duration_s
        assert s.extra["events"][-1]["end_s"] == s.duration_s


def test_render_cli(tmp_path, capsys):
    from tspo.cli import main as tspo_main

    out = tmp_path / "clips"
    assert tspo_main(["synth", "render", "--out", str(out), "--num", "2", "--seed", "4", "--min-seconds", "8",
                      "--max-seconds", "10", "--size", "32", "--kinds", "colour", "order"]) == 0
    samples = load_manifest(out / "manifest.jsonl")
    assert len(samples) == 2 and {s.extra["qa_kind"] for s in samples} <= {"colour", "order"}
    assert "rendered 2 target video(s)" in capsys.readouterr().out
    assert tspo_main(["synth", "render", "--out", str(tmp_path / "hay"), "--num", "1", "--family", "distractor",
                      "--min-seconds", "8", "--max-seconds", "8", "--size", "32"]) == 0
    assert load_manifest(tmp_path / "hay" / "manifest.jsonl")[0].extra["family"] == "distractor"
    assert tspo_main(["synth", "render", "--out", str(tmp_path / "x"), "--num", "0"]) == 2
    assert "num must be >= 1" in capsys.readouterr().err
    assert tspo_main(["synth", "--help"]) == 0
