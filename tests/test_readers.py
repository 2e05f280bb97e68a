"""Benchmark readers: small annotation files in each public format -> manifest samples."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from tspo.evaluation.readers import (
    BenchmarkFormatError,
    main,
    read_benchmark,
    read_longvideobench,
    read_mlvu,
    read_videomme,
)
from tspo.manifest import load_manifest


def _lvb_rows() -> list[dict]:
    return [
        {"video_id": "86CxyhFV9MI", "question": "Which subtitle appears with the red car?",
         "question_wo_referring_query": "Which subtitle?", "candidates": ["hello", "bye", "later", "now"],
         "correct_choice": 2, "position": [1, 2], "topic_category": "NP-News-Programs",
         "question_category": "TOS", "level": "L2-Relation", "id": "86CxyhFV9MI_0",
         "video_path": "86CxyhFV9MI.mp4", "subtitle_path": "86CxyhFV9MI_en.json", "duration_group": 600,
         "starting_timestamp_for_subtitles": 0, "duration": 527.0, "view_count": 10},
        {"video_id": "abc", "question": "What colour is the sky?", "candidates": ["red", "blue"],
         "correct_choice": 0, "id": "abc_1", "video_path": "abc.mp4", "duration": 12.5, "duration_group": 15},
    ]


def test_longvideobench_fields_map_to_manifest(tmp_path: Path) -> None:
    ann = tmp_path / "lvb_val.json"
    ann.write_text(json.dumps(_lvb_rows()))
    samples = read_longvideobench(ann)
    assert [s.id for s in samples] == ["86CxyhFV9MI_0", "abc_1"]
    s = samples[0]
    assert s.answer == "C" and s.options == ["hello", "bye", "later", "now"]
    assert s.video == str(tmp_path / "videos" / "86CxyhFV9MI.mp4")
    assert s.duration_s == 527.0 and s.kind == "general" and s.target_spans_s == []
    assert s.extra["question_category"] == "TOS" and s.extra["benchmark"] == "longvideobench"
    assert samples[1].answer == "A"
    other = read_longvideobench(ann, video_root=tmp_path / "v")
    assert other[1].video == str(tmp_path / "v" / "abc.mp4")


def test_longvideobench_test_split_and_bad_choice_are_refused(tmp_path: Path) -> None:
    rows = _lvb_rows()
    del rows[1]["correct_choice"]
    ann = tmp_path / "lvb_test_wo_gt.json"
    ann.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkFormatError, match="test split has no answers"):
        read_longvideobench(ann)
    rows = _lvb_rows()
    rows[0]["correct_choice"] = 4
    ann.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkFormatError, match="outside the 4 candidates"):
        read_longvideobench(ann)
    rows = _lvb_rows()
    rows[0]["duration"] = "long"
    ann.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkFormatError, match="'duration'"):
        read_longvideobench(ann)
    with pytest.raises(BenchmarkFormatError, match="does not exist"):
        read_longvideobench(tmp_path / "missing.json")


def _write_mlvu(root: Path) -> Path:
    js = root / "MLVU" / "json"
    js.mkdir(parents=True)
    (js / "1_plotQA.json").write_text(json.dumps([
        {"video": "movie101_66.mp4", "duration": 246, "question": "What does the man hold?",
         "candidates": ["a cup", "a phone", "a knife", "a book"], "answer": "a knife", "question_type": "plotQA"},
    ]))
    (js / "2_needle.json").write_text(json.dumps([
        {"video": "needle_32.mp4", "duration": 467.2, "question": "What is shown?",
         "candidates": ["cat", "dog", "bird", "fish"], "answer": "dog ", "question_type": "findNeedle"},
    ]))
    (js / "9_summary.json").write_text(json.dumps([
        {"video": "sum_1.mp4", "duration": 900, "question": "Summarise.", "answer": "A long story.",
         "question_type": "summary"},
    ]))
    return js


def test_mlvu_folder_reads_multiple_choice_tasks_only(tmp_path: Path) -> None:
    js = _write_mlvu(tmp_path)
    samples = read_mlvu(js)
    assert [s.id for s in samples] == ["mlvu-1_plotQA-0", "mlvu-2_needle-0"]
    assert samples[0].answer == "C" and samples[1].answer == "B"
    assert samples[0].video == str(tmp_path / "MLVU" / "video" / "1_plotQA" / "movie101_66.mp4")
    assert samples[1].duration_s == pytest.approx(467.2)
    assert samples[1].extra["question_type"] == "findNeedle"
    with pytest.raises(BenchmarkFormatError, match="open-ended"):
        read_mlvu(js / "9_summary.json")


def test_mlvu_answer_must_match_one_candidate(tmp_path: Path) -> None:
    f = tmp_path / "3_ego.json"
    f.write_text(json.dumps([{"video": "e.mp4", "duration": 10, "question": "q?",
                              "candidates": ["x", "y"], "answer": "z"}]))
    with pytest.raises(BenchmarkFormatError, match="matches 0 of the candidates"):
        read_mlvu(f)


def _videomme_rows() -> list[dict]:
    return [
        {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity & History",
         "url": "https://www.youtube.com/watch?v=fFjv93ACGo8", "videoID": "fFjv93ACGo8", "question_id": "001-1",
         "task_type": "Counting Problem", "question": "How many people appear?",
         "options": ["A. One.", "B. Two.", "C. Three.", "D. Four."], "answer": "B"},
        {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Humanity & History",
         "videoID": "fFjv93ACGo8", "question_id": "001-2", "task_type": "Object Recognition",
         "question": "What is on the table?", "options": ["A. A lamp.", "B. A cup.", "C. A pen.", "D. A hat."],
         "answer": "D"},
    ]


def _render(path: Path, seconds: int, fps: int = 4) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        st = c.add_stream("mpeg4", rate=fps)
        st.width = st.height = 32
        st.pix_fmt = "yuv420p"
        for i in range(seconds * fps):
            img = np.full((32, 32, 3), (i * 7) % 255, dtype=np.uint8)
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)


def test_videomme_jsonl_with_durations_and_probed_videos(tmp_path: Path) -> None:
    ann = tmp_path / "videomme" / "test.jsonl"
    ann.parent.mkdir()
    ann.write_text("".join(json.dumps(r) + "\n" for r in _videomme_rows()))
    samples = read_videomme(ann, durations={"fFjv93ACGo8": 95.0})
    assert [s.id for s in samples] == ["001-1", "001-2"]
    assert samples[0].options == ["One.", "Two.", "Three.", "Four."] and samples[0].answer == "B"
    assert samples[1].answer == "D" and samples[0].duration_s == 95.0
    assert samples[0].video == str(tmp_path / "data" / "fFjv93ACGo8.mp4")
    assert samples[0].extra["duration_category"] == "short" and samples[0].extra["task_type"] == "Counting Problem"
    # without durations the reader probes the video files
    with pytest.raises(BenchmarkFormatError, match="no duration in seconds"):
        read_videomme(ann)
    _render(tmp_path / "data" / "fFjv93ACGo8.mp4", seconds=3)
    probed = read_videomme(ann)
    assert probed[0].duration_s == pytest.approx(3.0, abs=0.3)


def test_videomme_option_prefix_checked(tmp_path: Path) -> None:
    rows = _videomme_rows()
    rows[0]["options"] = ["One.", "B. Two."]
    ann = tmp_path / "rows.json"
    ann.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkFormatError, match="must start with 'A. '"):
        read_videomme(ann, durations={"fFjv93ACGo8": 10.0})
    rows = _videomme_rows()
    rows[0]["answer"] = "E"
    ann.write_text(json.dumps(rows))
    with pytest.raises(BenchmarkFormatError, match="answer"):
        read_videomme(ann, durations={"fFjv93ACGo8": 10.0})


def test_converter_cli_writes_a_loadable_manifest(tmp_path: Path) -> None:
    ann = tmp_path / "lvb_val.json"
    ann.write_text(json.dumps(_lvb_rows()))
    out = tmp_path / "m" / "lvb.jsonl"
    assert main(["longvideobench", str(ann), "--out", str(out)]) == 0
    loaded = load_manifest(out)
    assert [(s.id, s.answer, s.video) for s in loaded] == [(s.id, s.answer, s.video) for s in read_longvideobench(ann)]
    with pytest.raises(BenchmarkFormatError, match="unknown benchmark"):
        read_benchmark("nextqa", ann)
