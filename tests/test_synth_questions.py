"""The question world: new kinds pinned against the renderer, per-kind coverage rules in the
manifest and the SimulatedOracle, confuser haystacks that never show what the question names."""

from dataclasses import replace

import numpy as np
import pytest

from tspo.data_synth import (
    NeedleConfig,
    SynthError,
    compose_needles,
    event_frames,
    events_from_extra,
    locate,
    make_clip_truth,
    render_dataset,
)
from tspo.data_synth.events import COLOURS, COVERAGE_RULES, QUESTION_KINDS, SHAPES, Event, excluded
from tspo.evaluation.kind_report import format_kind_table, kind_table
from tspo.rewards import OracleQuery, SimulatedOracle
from tspo.rewards.simulated import covers_groups, group_hits

SIZE = 32


def _shapes_shown(frame: np.ndarray, ev: Event, index: int) -> list[str]:
    """Every shape whose render of ``ev`` (same colour, background, motion, time) gives exactly ``frame``."""
    return [s for s in SHAPES if np.array_equal(event_frames(replace(ev, shape=s), 4, 64)[index], frame)]


def test_every_kind_has_its_coverage_rule_in_the_manifest(tmp_path):
    assert set(COVERAGE_RULES) == set(QUESTION_KINDS)
    samples = render_dataset(tmp_path / "t", 14, seed=3, min_seconds=20, max_seconds=30, fps=1, size=SIZE,
                             progress=False)
    for s in samples:
        kind = s.extra["qa_kind"]
        assert s.extra["coverage"] == COVERAGE_RULES[kind]
        groups = s.extra["evidence_groups_s"]
        assert [span for g in groups for span in g] == s.evidence_spans_s
        assert len(groups) == (len(s.extra["key_events"]) if kind in ("order", "count") else 1)


@pytest.mark.parametrize("seed", range(12))
def test_after_questions_ask_about_the_next_event_and_the_pixels_agree(seed):
    truth = make_clip_truth(np.random.default_rng(seed), 30, kinds=("after",))
    (cue_i,), (key_i,) = truth.cue_events, truth.key_events
    assert key_i == cue_i + 1
    cue, nxt = truth.events[cue_i], truth.events[key_i]
    assert truth.question == f"What appears right after the {cue.colour} {cue.shape}?"
    assert sum(e.shape == cue.shape for e in truth.events) == 1          # the cue is unambiguous
    answer = truth.options["ABCD".index(truth.answer)]
    assert answer == nxt.shape and cue.shape not in truth.options
    assert truth.evidence_spans_s == [[float(nxt.start_s), float(nxt.end_s)]] and nxt.start_s == cue.end_s
    # the rendered frame right after the cue shows the answer's shape, in the event's colour
    frame = event_frames(nxt, 4, 64)[0]
    assert _shapes_shown(frame, nxt, 0) == [answer]
    assert (frame.reshape(-1, 3) == np.asarray(COLOURS[nxt.colour], np.uint8)).all(-1).any()


@pytest.mark.parametrize("seed", range(12))
def test_shape_questions_name_a_unique_colour_and_the_pixels_agree(seed):
    truth = make_clip_truth(np.random.default_rng(seed), 30, kinds=("shape",))
    key = truth.events[truth.key_events[0]]
    assert truth.question == f"Which shape is {key.colour}?"
    assert [e.colour for e in truth.events].count(key.colour) == 1
    answer = truth.options["ABCD".index(truth.answer)]
    assert answer == key.shape and len(set(truth.options)) == 4
    frame = event_frames(key, 4, 64)[1]
    assert _shapes_shown(frame, key, 1) == [answer]
    assert (frame.reshape(-1, 3) == np.asarray(COLOURS[key.colour], np.uint8)).all(-1).any()
    assert truth.exclusion() == {"shapes": [key.shape], "colours": [key.colour], "text": False}


def _query(ts, meta):
    return OracleQuery("s", "q?", ("a", "b", "c", "d"), np.asarray(ts, float), meta={"answer": "B", **meta})


def test_simulated_oracle_applies_each_kinds_rule():
    groups = [[[10.0, 14.0]], [[20.0, 23.0], [40.0, 41.0]]]          # two key events, the 2nd cut in two
    oracle = SimulatedOracle(guess="wrong")
    every = {"kind": "needle", "coverage": COVERAGE_RULES["order"], "evidence_groups_s": groups}
    assert oracle.answer([_query([11.0, 50.0], every)])[0].letter != "B"             # only one event seen
    assert oracle.answer([_query([11.0, 40.5], every)])[0].letter == "B"             # both, via the 2nd part
    one = {"kind": "needle", "coverage": COVERAGE_RULES["colour"], "evidence_groups_s": [groups[0]]}
    assert oracle.answer([_query([13.9], one)])[0].letter == "B"
    assert oracle.answer([_query([14.0], one)])[0].letter != "B"                     # spans are [start, end)
    two = {"kind": "needle", "coverage": COVERAGE_RULES["motion"], "evidence_groups_s": [groups[0]]}
    assert oracle.answer([_query([11.0, 30.0], two)])[0].letter != "B"               # motion needs 2 picks
    assert oracle.answer([_query([11.0, 12.0], two)])[0].letter == "B"
    assert group_hits(np.array([11.0, 12.0, 20.5]), groups).tolist() == [2, 1]
    with pytest.raises(ValueError, match="no evidence_groups_s"):
        covers_groups(np.array([1.0]), None, {"rule": "all", "min_picks": 1}, "x")
    with pytest.raises(ValueError, match="coverage"):
        covers_groups(np.array([1.0]), groups, {"rule": "most"}, "x")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    kw = {"fps": 1, "size": SIZE, "progress": False}
    targets = render_dataset(root / "t", 7, seed=1, min_seconds=20, max_seconds=30, **kw)
    confusers = render_dataset(root / "c", 6, seed=2, min_seconds=60, max_seconds=90, **kw)
    hay = render_dataset(root / "d", 2, seed=3, family="distractor", min_seconds=60, max_seconds=80, **kw)
    return targets, confusers, hay


def _second_events(sample, pools):
    """The event dict on screen at each composed second (None for texture haystack)."""
    out = []
    seg, src_t = locate(sample.video, np.arange(int(sample.duration_s)) + 0.5)
    for g, t in zip(seg, src_t):
        src = pools.get(sample.video[g]["source"])
        out.append(None if src is None else next(e for e in src.extra["events"] if e["start_s"] <= t < e["end_s"]))
    return out


def test_confuser_haystack_never_shows_what_the_question_names(world):
    targets, confusers, hay = world
    cfg = NeedleConfig(min_minutes=2.0, max_minutes=3.0, repeats=(1, 1), target_fraction=None,
                       target_order="contiguous", confuser_ratio=1.0)
    samples, _ = compose_needles(targets, [], 14, seed=4, config=cfg, progress=False, confusers=confusers)
    pools = {s.video: s for s in [*targets, *confusers]}
    by_id = {s.id: s for s in targets}
    for s in samples:
        target = by_id[s.extra["target_id"]]
        assert s.extra["coverage"] == target.extra["coverage"] and s.extra["confuser_ratio"] == 1.0
        events = _second_events(s, pools)
        roles = np.repeat(s.extra["segment_roles"], [int(g["end_s"] - g["start_s"]) for g in s.video])
        assert all(e is not None for e in events)                                 # 100 %: no texture at all
        hay_events = [e for e, r in zip(events, roles) if r == "distractor"]
        assert hay_events and not any(excluded(e, target.extra["exclude"]) for e in hay_events)
        # every evidence group landed on the target's key event, in one piece (contiguous target)
        keys = [events_from_extra(target.extra)[i] for i in target.extra["key_events"]]
        for group, key in zip(s.extra["evidence_groups_s"], keys):
            (a, b), = group
            assert b - a == key.end_s - key.start_s
            assert {(e["shape"], e["colour"]) for e in events[int(a):int(b)]} == {(key.shape, key.colour)}


def test_confuser_ratio_mixes_and_bad_inputs_raise(world):
    targets, confusers, hay = world
    cfg = NeedleConfig(min_minutes=3.0, max_minutes=4.0, repeats=(1, 1), target_fraction=None, confuser_ratio=0.5)
    samples, _ = compose_needles(targets, [h.video for h in hay], 6, seed=5, config=cfg, progress=False,
                                 confusers=confusers)
    sources = [g["source"] for s in samples for g, r in zip(s.video, s.extra["segment_roles"]) if r == "distractor"]
    hay_paths = {h.video for h in hay}
    share = np.mean([src not in hay_paths for src in sources])
    assert 0.25 < share < 0.75
    with pytest.raises(SynthError, match="confuser pool is empty"):
        compose_needles(targets, [h.video for h in hay], 1, config=cfg, progress=False)
    with pytest.raises(SynthError, match="haystack pool is empty"):
        compose_needles(targets, [], 1, config=NeedleConfig(confuser_ratio=0.5), progress=False, confusers=confusers)
    with pytest.raises(SynthError, match=r"confuser_ratio must be in \[0, 1\]"):
        NeedleConfig(confuser_ratio=1.5).validate()


def test_kind_table_joins_outcomes_with_kinds_and_rules(world):
    targets, _, _ = world
    s = targets[0]
    spans = [span for g in s.extra["evidence_groups_s"] for span in g]
    inside = sorted([a + 0.5 for a, _ in spans] * 2)                           # two picks in every group
    outside = [next(t + 0.5 for t in range(int(s.duration_s)) if not any(a <= t + 0.5 < b for a, b in spans))] * 2
    result = {"samples": [
        {"sample_id": s.id, "method": "x", "correct": True, "timestamps_s": inside},
        {"sample_id": s.id, "method": "y", "correct": False, "timestamps_s": outside},
        {"sample_id": s.id, "method": "z", "correct": None, "timestamps_s": inside},
    ]}
    table = kind_table(result, targets)
    kind = s.extra["qa_kind"]
    assert table[kind]["x"] == {"accuracy": 1.0, "accuracy_ci": [1.0, 1.0], "coverage": 1.0, "coverage_ci": [1.0, 1.0],
                                "n": 1, "targets": 1}
    assert table[kind]["y"] == {"accuracy": 0.0, "accuracy_ci": [0.0, 0.0], "coverage": 0.0, "coverage_ci": [0.0, 0.0],
                                "n": 1, "targets": 1}
    assert "z" not in table[kind] and table["all"]["x"]["n"] == 1
    assert f"| {kind} | 1 | 1 | 1.00 / 1.00 [1.00, 1.00] |" in format_kind_table(table, ("x", "y"))
    with pytest.raises(ValueError, match="per_sample"):
        kind_table({}, targets)


def test_text_needs_legible_frames():
    from tspo.data_synth.events import TEXT_MIN_PX

    groups = [[[10.0, 14.0]]]
    oracle = SimulatedOracle(guess="wrong")
    text = {"kind": "needle", "coverage": COVERAGE_RULES["text"], "evidence_groups_s": groups}
    assert oracle.answer([_query([11.0], text)])[0].letter == "B"                    # full size: as before
    assert oracle.answer([_query([11.0], {**text, "frame_px": TEXT_MIN_PX})])[0].letter == "B"
    assert oracle.answer([_query([11.0], {**text, "frame_px": TEXT_MIN_PX - 1})])[0].letter != "B"
    small = OracleQuery("s", "q?", ("a", "b", "c", "d"), np.array([11.0]), frames=np.zeros((1, 40, 40, 3), np.uint8),
                        meta={"answer": "B", **text})
    assert oracle.answer([small])[0].letter != "B"                                  # the frames' own size
    colour = {"kind": "needle", "coverage": COVERAGE_RULES["colour"], "evidence_groups_s": groups, "frame_px": 20}
    assert oracle.answer([_query([11.0], colour)])[0].letter == "B"                 # colour needs no resolution


def test_synth_world_makes_the_benchmark_question_world_in_one_command(tmp_path):
    """Issue 21 item 7: `tspo synth world` = question_world() (the benchmark's sizes and flags, one owner)."""
    import json
    from dataclasses import asdict

    from benchmarks import bench_question
    from tspo.cli.synth import main as synth_main
    from tspo.manifest import load_manifest
    from tspo.training.synth import question_world

    assert (question_world("x").num_train, question_world("x").num_val) == (bench_question.NUM_TRAIN,
                                                                            bench_question.NUM_VAL)
    out = tmp_path / "world"
    assert synth_main(["world", "--out", str(out), "--seed", "1", "--num-train", "4", "--num-val", "2"]) == 0
    made = json.loads((out / "synth_config.json").read_text())
    assert made == json.loads(json.dumps(asdict(question_world(str(out), num_train=4, num_val=2, seed=1)), default=list))
    train, val = load_manifest(out / "train" / "manifest.jsonl"), load_manifest(out / "val" / "manifest.jsonl")
    assert (len(train), len(val)) == (4, 2)
    assert all(s.kind == "needle" and s.extra.get("qa_kind") and s.target_spans_s for s in train + val)
    # the haystack is confuser clips only, and held-out needles never reuse a training clip
    sources = lambda ss: {seg["source"] for s in ss for seg in s.video}  # noqa: E731
    assert all("confusers" in src or "targets" in src for src in sources(train + val))
    assert not sources(train) & sources(val)
    assert synth_main(["world", "--out", str(out), "--num-train", "0"]) == 2
