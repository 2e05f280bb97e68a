"""The zoom benchmarks' held-out needles: 30-60 min, 3-7 s evidence, texture or confuser haystack."""

from __future__ import annotations

from benchmarks.bench_zoom import heldout_needles


def _check_lengths(needles, twins) -> None:
    assert needles and len(twins) == len(needles)
    for s, e in zip(needles, twins):
        assert 30 * 60 <= s.duration_s <= 60 * 60
        assert all(3.0 <= b - a <= 7.0 for a, b in s.evidence_spans_s)
        # the twin keeps only the evidence seconds of the target clip
        assert sum(b - a for a, b in e.evidence_spans_s) == sum(b - a for a, b in s.evidence_spans_s)
        assert e.duration_s < s.duration_s


def test_confuser_haystack_is_cut_only_from_confuser_clips(tmp_path):
    needles, twins = heldout_needles(tmp_path, 2, seed=0, confusers=4, confuser_ratio=1.0)
    _check_lengths(needles, twins)
    assert not (tmp_path / "long_haystack").exists()  # ratio 1: no texture videos rendered
    for s in needles:
        haystack = [seg["source"] for seg, role in zip(s.video, s.extra["segment_roles"]) if role != "target"]
        assert haystack and all("long_confusers" in str(src) for src in haystack)


def test_default_haystack_is_texture_videos(tmp_path):
    needles, twins = heldout_needles(tmp_path, 1, seed=0)
    _check_lengths(needles, twins)
    haystack = [seg["source"] for seg, role in zip(needles[0].video, needles[0].extra["segment_roles"])
                if role != "target"]
    assert haystack and all("long_haystack" in str(src) for src in haystack)
