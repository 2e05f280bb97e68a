"""Candidate sampling: grid, frame mapping, virtual videos, resizing, and every bad input."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import write_video

from tspo.video import (
    VideoError,
    candidate_times,
    probe_video,
    read_frames_at,
    sample_candidates,
)


def test_candidate_grid():
    np.testing.assert_allclose(candidate_times(5.0, 1.0), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(candidate_times(4.5, 2.0), np.arange(9) / 2)
    capped = candidate_times(600.0, 1.0, max_candidates=128)
    assert len(capped) == 128 and capped[0] == 0 and capped[-1] == 599
    assert np.all(np.diff(capped) > 0) and np.all(capped == np.round(capped))  # still on the 1 s grid
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="fps"):
            candidate_times(10.0, bad)
    with pytest.raises(ValueError, match="max_candidates"):
        candidate_times(10.0, 1.0, max_candidates=0)


def test_probe_and_sample(short_video):
    info = probe_video(short_video)
    assert info.num_frames == 80 and info.fps == pytest.approx(4.0) and info.duration_s == pytest.approx(20.0)
    assert (info.height, info.width) == (48, 64)
    c = sample_candidates(short_video, fps=1.0, size=32)
    assert len(c) == 20 and c.frames.shape == (20, 32, 32, 3) and c.frames.dtype == np.uint8
    np.testing.assert_array_equal(c.frame_indices, np.arange(20) * 4)
    np.testing.assert_allclose(c.timestamps_s, np.arange(20))
    palette = np.random.default_rng(7).integers(0, 256, size=(20, 3), dtype=np.uint8)
    # most of each frame is the background colour of its second (a thin bar moves across it)
    np.testing.assert_allclose(np.median(c.frames, axis=(1, 2)), palette.astype(float), atol=12)


def test_max_candidates_and_native_size(short_video):
    c = sample_candidates(short_video, fps=2.0, max_candidates=8, size=None)
    assert len(c) == 8 and c.frames.shape[1:] == (48, 64, 3)
    c = sample_candidates(short_video, fps=1.0, size=(20, 30), return_frames=True)
    assert c.frames.shape[1:] == (20, 30, 3)
    assert sample_candidates(short_video, return_frames=False).frames is None


def test_fps_above_source_keeps_each_frame_once(short_video):
    c = sample_candidates(short_video, fps=10.0, return_frames=False)
    assert len(c) == 80 and np.all(np.diff(c.frame_indices) == 1)


def test_short_video_gives_fewer_candidates(tmp_path):
    path = write_video(tmp_path / "tiny.mp4", seconds=2.5, fps=4)
    c = sample_candidates(path, fps=1.0, size=16)
    assert len(c) == 3


def test_odd_resolution_and_vfr(tmp_path):
    path = write_video(tmp_path / "odd.mp4", seconds=3, fps=5, size=(37, 53), codec="mpeg4")
    c = sample_candidates(path, fps=1.0, size=24)
    assert c.frames.shape == (3, 24, 24, 3)
    # variable frame rate: frames with irregular timestamps; candidates follow real timestamps.
    vfr = tmp_path / "vfr.mkv"
    pts = [0, 1, 2, 3, 10, 11, 30, 31]  # in 1/10 s
    with av.open(str(vfr), "w") as out:
        s = out.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.time_base = Fraction(1, 10)
        s.codec_context.time_base = Fraction(1, 10)
        for i, p in enumerate(pts):
            img = np.full((32, 32, 3), 30 * i, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = p, Fraction(1, 10)
            for pkt in s.encode(f):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    c = sample_candidates(vfr, fps=1.0, size=None, return_frames=False)
    # second 0 -> frame 0 (t=0.0); 1 -> frame 4 (t=1.0); 2 -> frame 5 (1.1 s, shown until 3.0 s); 3 -> frame 6
    assert list(c.frame_indices[:4]) == [0, 4, 5, 6]


def test_virtual_video_decodes_the_right_frames(tmp_path):
    red = write_video(tmp_path / "a.mp4", 10, fps=4, colours=np.tile(np.array([[200, 0, 0]], np.uint8), (10, 1)))
    blue = write_video(tmp_path / "b.mp4", 10, fps=4, colours=np.tile(np.array([[0, 0, 200]], np.uint8), (10, 1)))
    segments = [
        {"source": str(red), "start_s": 2, "end_s": 5},
        {"source": str(blue), "start_s": 0, "end_s": 4},
        {"source": str(red), "start_s": 7, "end_s": 9},
    ]
    c = sample_candidates(segments, fps=1.0, size=16)
    assert len(c) == 9
    np.testing.assert_array_equal(c.segment_ids, [0, 0, 0, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(c.frame_indices, [8, 12, 16, 0, 4, 8, 12, 28, 32])
    is_blue = np.median(c.frames[..., 2], axis=(1, 2)) > 100
    np.testing.assert_array_equal(is_blue, [False] * 3 + [True] * 4 + [False] * 2)
    frames = read_frames_at(segments, np.array([3.5, 0.0]), size=16)
    assert np.median(frames[0, ..., 2]) > 100 and np.median(frames[1, ..., 0]) > 100


def test_virtual_video_errors(tmp_path, short_video):
    with pytest.raises(VideoError, match="lasts"):
        sample_candidates([{"source": str(short_video), "start_s": 0, "end_s": 99}])
    with pytest.raises(VideoError, match="start_s < end_s"):
        sample_candidates([{"source": str(short_video), "start_s": 5, "end_s": 5}])
    with pytest.raises(VideoError, match="lasts 20.000 s"):  # 0.3 s past the end: more than a frame (0.25 s)
        sample_candidates([{"source": str(short_video), "start_s": 0, "end_s": 20.3}])


def test_segment_end_a_frame_past_the_stream_is_clamped_with_a_warning(short_video):
    # a container duration (audio included) 0.032 s longer than the 20 s video stream
    with pytest.warns(UserWarning, match="after the video stream"):
        c = sample_candidates([{"source": str(short_video), "start_s": 15, "end_s": 20.032}], size=16)
    assert c.duration_s == pytest.approx(5.0) and len(c) == 5
    with pytest.raises(VideoError, match="keys source"):
        sample_candidates([{"path": str(short_video)}])
    with pytest.raises(VideoError, match="non-empty list"):
        sample_candidates([])


@pytest.mark.parametrize("codec,ext", [("libx264", "mkv"), ("mpeg4", "avi")])
def test_truncated_file_that_still_opens_is_refused(tmp_path, codec, ext):
    """Cut in half, these containers still open and decode their first part: without a check
    the video would silently pass for a shorter one."""
    full = write_video(tmp_path / f"full.{ext}", seconds=20, fps=4, codec=codec)
    assert probe_video(full).duration_s == pytest.approx(20.0)
    half = tmp_path / f"half.{ext}"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"declares .* but only .* can be decoded; the file is truncated"):
        sample_candidates(half, size=16)


def _zero_frame_video(path):
    out = av.open(str(path), "w")
    s = out.add_stream("mpeg4", rate=4)
    s.width, s.height = 32, 32
    out.start_encoding()
    out.close()
    return path


def _audio_only(path):
    with av.open(str(path), "w") as out:
        s = out.add_stream("mp2", rate=16000)
        s.layout = "mono"
        for i in range(10):
            samples = (np.sin(np.arange(1152) / 10.0) * 3000).astype(np.int16)[None]
            f = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            f.sample_rate, f.pts = 16000, i * 1152
            for pkt in s.encode(f):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def test_bad_videos(tmp_path, short_video):
    with pytest.raises(VideoError, match="does not exist"):
        sample_candidates(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    with pytest.raises(VideoError, match="not a readable video"):
        sample_candidates(text)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        sample_candidates(empty)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(short_video.read_bytes()[:1500])
    with pytest.raises(VideoError, match="truncated|corrupt|not a readable|zero"):
        sample_candidates(truncated)
    with pytest.raises(VideoError, match="zero decodable frames|not a readable|corrupt"):
        sample_candidates(_zero_frame_video(tmp_path / "zero.avi"))
    with pytest.raises(VideoError, match="audio-only"):
        sample_candidates(_audio_only(tmp_path / "audio.mp2"))
    with pytest.raises(VideoError, match="directory"):
        sample_candidates(tmp_path)


def test_whole_frames_without_crop(tmp_path, short_video):
    frames = read_frames_at(short_video, np.array([0.0, 5.0]), size=24, crop=False)
    assert frames.shape == (2, 24, 32, 3)  # 48x64 source: short side 24, aspect kept
    tall = write_video(tmp_path / "tall.mp4", 4, fps=4, size=(64, 32))
    mixed = [{"source": str(short_video), "start_s": 0, "end_s": 2}, {"source": str(tall), "start_s": 0, "end_s": 2}]
    out = read_frames_at(mixed, np.array([0.5, 2.5]), size=24, crop=False)
    assert out.shape == (2, 24, 32, 3)  # the tall source is resized to the first frame's shape
