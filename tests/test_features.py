"""`tspo features` / tspo.features.extract: every video encoded once across ranks, bit-identical, resumable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_video

from tspo.features.cache import FeatureCache, cache_entries, entry_key, video_features
from tspo.features.extract import Entry, assign, extract_features

FPS, CAP, B = 1.0, 16, 8


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("feature_videos")
    return [str(write_video(d / f"v{i}.mp4", seconds=9 + 3 * i, fps=4)) for i in range(5)]


@pytest.fixture(scope="module")
def manifest(videos, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("feature_manifest") / "m.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "video": v, "question": "what colour?", "options": ["a", "b"],
                                        "answer": "A", "kind": "general", "duration_s": 9.0 + 3 * i}) + "\n"
                            for i, v in enumerate(videos)))
    return path


def _features(cache: FeatureCache, videos, encoder) -> list[torch.Tensor]:
    out = []
    for v in videos:
        vf = cache.load(entry_key(cache, v, encoder, FPS, CAP))
        assert vf is not None, v
        out.append(vf.features)
    return out


def test_extract_once_then_all_cached_and_failures_recorded(videos, tiny_encoder, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    virtual = [{"source": videos[0], "start_s": 0.0, "end_s": 4.0}, {"source": videos[1], "start_s": 2.0, "end_s": 6.0}]
    todo = [*videos, videos[0], str(tmp_path / "missing.mp4"), str(bad), virtual]
    cache = FeatureCache(tmp_path / "cache")
    s = extract_features(todo, tiny_encoder, cache, FPS, CAP, num_workers=0, batch_frames=B, progress=False)
    # 5 files at cap 16 + the needle's 2 sources at the full grid; the repeated video once
    assert s.done == 7 and s.cached == 0
    assert sorted(s.failed_owners) == [6, 7] and "does not exist" in s.failed_owners[6]
    per_video = s.ranks[0].videos
    assert all(v["frames"] == len(cache.load(v["key"])) for v in per_video)      # every row encoded once
    for v in videos:                                                             # same rows as the reader computes
        ref = video_features(v, tiny_encoder, FPS, CAP, None)
        got = cache.load(entry_key(cache, v, tiny_encoder, FPS, CAP))
        assert torch.allclose(got.features, ref.features, atol=1e-5) and (got.timestamps_s == ref.timestamps_s).all()
    again = extract_features(todo, tiny_encoder, cache, FPS, CAP, num_workers=0, batch_frames=B, progress=False)
    assert (again.done, again.cached, again.frames, again.encoder_calls) == (0, 7, 0, 0)
    assert sorted(again.failed_owners) == [6, 7]


def test_decode_workers_give_the_same_bits(videos, tiny_encoder, tmp_path):
    from tspo.video import read_frames_at

    for v in videos:   # this process holds open readers: forked workers must not use (hang on) them
        read_frames_at(v, np.arange(0.0, 4.0), tiny_encoder.image_size)
    a, b = FeatureCache(tmp_path / "a"), FeatureCache(tmp_path / "b")
    extract_features(videos, tiny_encoder, a, FPS, CAP, num_workers=0, batch_frames=B, progress=False)
    extract_features(videos, tiny_encoder, b, FPS, CAP, num_workers=2, batch_frames=B, progress=False)
    for x, y in zip(_features(a, videos, tiny_encoder), _features(b, videos, tiny_encoder)):
        assert torch.equal(x, y)


def test_assign_deals_each_entry_to_exactly_one_rank_balanced():
    entries = [Entry(f"k{i}", f"v{i}", None, f"v{i}", w, [i]) for i, w in enumerate([9, 1, 5, 5, 3, 7, 2, 8])]
    shards = assign(entries, 3)
    keys = [e.key for s in shards for e in s]
    assert sorted(keys) == sorted(e.key for e in entries)
    loads = [sum(e.weight for e in s) for s in shards]
    assert max(loads) - min(loads) <= 2
    assert assign(list(reversed(entries)), 3) == shards                          # the same on every rank


def test_killed_run_resumes_and_half_written_entries_are_never_read(videos, tiny_encoder, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    stored = []

    def crash_at_half(entry):
        stored.append(entry.key)
        if len(stored) == 2:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        extract_features(videos, tiny_encoder, cache, FPS, CAP, num_workers=0, batch_frames=B, progress=False,
                         on_stored=crash_at_half)
    # what a kill leaves besides whole entries: a temporary file, and (from elsewhere) a truncated entry
    victim = next(k for k in (entry_key(cache, v, tiny_encoder, FPS, CAP) for v in videos) if k not in stored)
    whole = cache.path(stored[0]).read_bytes()
    cache.path(victim).parent.mkdir(parents=True, exist_ok=True)
    cache.path(victim).write_bytes(whole[: len(whole) // 2])
    (cache.path(stored[0]).parent / f".{cache.path(stored[0]).name}.x.tmp").write_bytes(whole[:100])
    rerun = extract_features(videos, tiny_encoder, cache, FPS, CAP, num_workers=0, batch_frames=B, progress=False)
    assert rerun.cached == 2 and rerun.done == 3
    assert {v["key"] for v in rerun.ranks[0].videos}.isdisjoint(stored)          # only the rest encoded
    full = FeatureCache(tmp_path / "full")
    extract_features(videos, tiny_encoder, full, FPS, CAP, num_workers=0, batch_frames=B, progress=False)
    for x, y in zip(_features(cache, videos, tiny_encoder), _features(full, videos, tiny_encoder)):
        assert torch.equal(x, y)


def _cli(manifest: Path, cache: Path, out: Path, *extra: str) -> dict:
    argv = [sys.executable, "-m", "tspo", "features", str(manifest), "--feature-cache", str(cache), "--encoder",
            "tiny-random", "--max-candidates", str(CAP), "--batch-frames", str(B), "--accelerator", "cpu",
            "--num-workers", "0", "--json", str(out), "--quiet", *extra]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_two_gloo_processes_encode_each_video_once_bit_identical(manifest, videos, tiny_encoder, tmp_path):
    one = _cli(manifest, tmp_path / "c1", tmp_path / "one.json")
    two = _cli(manifest, tmp_path / "c2", tmp_path / "two.json", "--devices", "2")
    assert [r["rank"] for r in two["ranks"]] == [0, 1] and all(r["assigned"] > 0 for r in two["ranks"])
    keys = [v["key"] for r in two["ranks"] for v in r["videos"]]
    assert len(keys) == len(set(keys)) == len(videos)                           # each video on exactly one rank
    c1, c2 = FeatureCache(tmp_path / "c1"), FeatureCache(tmp_path / "c2")
    for r in two["ranks"]:
        for v in r["videos"]:
            assert v["frames"] == len(c2.load(v["key"]))                         # all its rows, once
    assert two["frames"] == one["frames"] == sum(len(c1.load(k)) for k in keys)
    for x, y in zip(_features(c1, videos, tiny_encoder), _features(c2, videos, tiny_encoder)):
        assert torch.equal(x, y)


def test_cli_errors_name_the_input(tmp_path, capsys):
    from tspo.cli.features import main

    assert main([str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(tmp_path / "nope.jsonl"), "--batch-frames", "0"]) == 2


def test_cache_entries_of_a_needle_are_its_sources(videos):
    virtual = [{"source": videos[0], "start_s": 0.0, "end_s": 4.0}, {"source": videos[0], "start_s": 5.0, "end_s": 7.0}]
    assert cache_entries(virtual, 1.0, 16) == [(videos[0], None)]
    off_grid = [{"source": videos[0], "start_s": 0.5, "end_s": 4.0}]
    assert cache_entries(off_grid, 1.0, 16) == [(off_grid, 16)]


def test_datamodule_extracts_through_the_engine_and_skips_unreadable_videos(manifest, tmp_path, caplog):
    from tspo.training.datamodule import TSPODataModule

    lines = manifest.read_text().splitlines()
    broken = json.loads(lines[0]) | {"id": "broken", "video": str(tmp_path / "gone.mp4")}
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([*lines, json.dumps(broken)]) + "\n")
    dm = TSPODataModule(train_manifest=str(path), encoder="tiny-random", max_candidates=CAP,
                        feature_cache=str(tmp_path / "cache"), progress=False)
    with caplog.at_level("WARNING"):
        dm.setup("fit")
    assert len(dm.train_set) == len(lines) and "skipping 1 of 6 samples" in caplog.text
    assert dm.train_set.cache.hits == len(lines) and dm.train_set.cache.misses == 0   # read, not re-encoded


class FailingEncoder:
    """The tiny encoder whose ``fail_calls``-th encoder calls (1-based) raise: an OOM, a driver error."""

    def __init__(self, encoder, fail_calls: set[int] | None = None) -> None:
        self.encoder, self.fail_calls, self.calls = encoder, fail_calls, 0

    def __getattr__(self, name):
        return getattr(self.encoder, name)

    def encode_frames(self, frames, batch_size: int = 64):
        self.calls += 1
        if self.fail_calls is None or self.calls in self.fail_calls:
            raise RuntimeError(f"CUDA out of memory (injected, call {self.calls})")
        return self.encoder.encode_frames(frames, batch_size=batch_size)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failing_encoder_call_skips_its_videos_and_the_run_goes_on(videos, tiny_encoder, tmp_path, workers):
    cache = FeatureCache(tmp_path / "cache")
    enc = FailingEncoder(tiny_encoder, fail_calls={2})
    s = extract_features(videos, enc, cache, FPS, CAP, num_workers=workers, batch_frames=B, progress=False)
    report = s.ranks[0]
    assert report.failed_encoder_calls == 1 and s.encoder_calls == enc.calls
    # the call's B frames belong to 1-2 videos: those fail with the reason, the others are written
    assert 1 <= len(s.failed) <= 2 and s.done == len(videos) - len(s.failed)
    assert all("encoder call failed" in f["reason"] and "CUDA out of memory (injected, call 2)" in f["reason"]
               for f in s.failed)
    failed = {videos[o] for o in s.failed_owners}
    assert {f["video"] for f in s.to_json()["failed"]} == failed and s.to_json()["failed_encoder_calls"] == 1
    ref = FeatureCache(tmp_path / "ref")
    extract_features(videos, tiny_encoder, ref, FPS, CAP, num_workers=0, batch_frames=B, progress=False)
    for v in videos:
        got = cache.load(entry_key(cache, v, tiny_encoder, FPS, CAP))
        if v in failed:
            assert got is None                                                # nothing written for a failed video
        else:
            assert torch.equal(got.features, ref.load(entry_key(ref, v, tiny_encoder, FPS, CAP)).features)
    # a rerun with a working encoder does the failed ones only
    again = extract_features(videos, tiny_encoder, cache, FPS, CAP, num_workers=0, batch_frames=B, progress=False)
    assert (again.done, again.cached, again.failed) == (len(failed), len(videos) - len(failed), [])


def test_cli_exit_code_1_lists_the_videos_whose_encoder_calls_failed(manifest, videos, tiny_encoder, tmp_path,
                                                                     monkeypatch, capsys):
    import tspo.features.encoder_cache as encoder_cache
    from tspo.cli.features import main

    monkeypatch.setattr(encoder_cache, "cached_encoder", lambda *a, **k: FailingEncoder(tiny_encoder))
    out = tmp_path / "s.json"
    argv = [str(manifest), "--feature-cache", str(tmp_path / "c"), "--encoder", "tiny-random", "--max-candidates",
            str(CAP), "--batch-frames", str(B), "--accelerator", "cpu", "--num-workers", "0", "--json", str(out),
            "--quiet"]
    assert main(argv) == 1                                                       # every call fails: all listed
    summary = json.loads(out.read_text())
    assert summary["done"] == 0 and sorted(f["video"] for f in summary["failed"]) == sorted(videos)
    assert summary["failed_encoder_calls"] == summary["encoder_calls"] > 0
    assert f"{len(videos)} failed" in capsys.readouterr().out
