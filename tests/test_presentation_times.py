"""Candidates take the frame NEAREST their sampling time and report its real presentation time (pts), in
the Selection, its JSON, the plug-ins' prompts and composed needle features (issue 21, item 2). The truth
is read with PyAV (the pts ffprobe prints) from clips rendered here: NTSC 30000/1001 and variable rate."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tspo.features.cache import FeatureCache, encode_candidates, video_features
from tspo.plugins._clip import clip_from_selection, timestamps_sentence
from tspo.selection.selector import TSPOSelector
from tspo.video import plan_candidates, presentation_times, write_frames


def _pts(path: Path) -> np.ndarray:
    """Presentation time (s) of every frame, in decode order, as the container says (ffprobe's pts_time)."""
    with av.open(str(path)) as container:
        return np.array([float(f.pts * f.time_base) for f in container.decode(video=0)])


def _nearest(pts: np.ndarray, times: np.ndarray) -> np.ndarray:
    dist = np.abs(pts[None, :] - times[:, None])
    return dist.argmin(axis=1)                              # ties: the first (earlier) frame


def _frames(n: int) -> np.ndarray:
    return np.stack([np.full((48, 64, 3), (7 * i) % 256, np.uint8) for i in range(n)])


@pytest.fixture(scope="module")
def ntsc(tmp_path_factory) -> Path:
    """4 s at 29.97 fps: frame 29 is at 0.968 s, frame 30 at 1.001 s."""
    return write_frames(tmp_path_factory.mktemp("ntsc") / "ntsc.mp4", _frames(120), Fraction(30000, 1001))


@pytest.fixture(scope="module")
def vfr(tmp_path_factory) -> Path:
    """Frames at 0, 0.1, 0.2, 0.3, 0.8, 1.1, 1.9, 3.1 s: for 1 s the frame on screen is 0.8 s, the nearest 1.1 s."""
    path = tmp_path_factory.mktemp("vfr") / "vfr.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 10)
        for i, p in enumerate([0, 1, 2, 3, 8, 11, 19, 31]):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 30 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = p, Fraction(1, 10)
            for pkt in s.encode(f):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


@pytest.mark.parametrize("clip,fps", [("ntsc", 1.0), ("ntsc", 3.0), ("vfr", 1.0)])
def test_candidates_are_the_nearest_frames_at_their_real_pts(clip, fps, request):
    path = request.getfixturevalue(clip)
    pts = _pts(path)
    times, _, idx, _ = plan_candidates(path, fps)
    grid = np.arange(len(times)) / fps
    want = _nearest(pts, grid)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(times, pts[want], atol=1e-6)
    np.testing.assert_allclose(presentation_times(path, times), times, atol=1e-9)     # idempotent


def test_ntsc_second_one_is_frame_30_at_1001_ms(ntsc):
    times, _, idx, _ = plan_candidates(ntsc, 1.0)
    assert idx[1] == 30 and times[1] == pytest.approx(1.001, abs=1e-6)        # not frame 29 at 0.968 s


def test_selection_json_and_prompt_carry_the_real_times(vfr, tmp_path):
    pts = _pts(vfr)
    sel = TSPOSelector(encoder="tiny-random", cache=FeatureCache(tmp_path / "c"))
    for method in ("uniform", "clip"):
        res = sel.select(vfr, "What is shown?", num_frames=4, method=method, fps=1.0, return_frames=True)
        np.testing.assert_allclose(res.timestamps, pts[res.indices], atol=1e-6)
        np.testing.assert_allclose(res.candidate_timestamps, [0.0, 1.1, 1.9, 3.1], atol=1e-6)
        assert res.to_dict()["timestamps"] == [0.0, 1.1, 1.9, 3.1]
        assert timestamps_sentence(clip_from_selection(res)) == "The 4 video frames were taken at 0.0s, 1.1s, 1.9s, 3.1s."


def test_composed_needle_features_report_the_same_frames_and_times(ntsc, tiny_encoder, tmp_path):
    """A virtual video composed in feature space (cached sources) agrees with decoding it directly."""
    segments = [{"source": str(ntsc), "start_s": 2.0, "end_s": 4.0}, {"source": str(ntsc), "start_s": 0.0, "end_s": 2.0}]
    composed = video_features(segments, tiny_encoder, fps=1.0, cache=FeatureCache(tmp_path / "c"))
    direct = encode_candidates(segments, tiny_encoder, fps=1.0)
    np.testing.assert_array_equal(composed.frame_indices, direct.frame_indices)
    np.testing.assert_array_equal(composed.frame_indices, [60, 90, 0, 30])
    np.testing.assert_allclose(composed.timestamps_s, direct.timestamps_s, atol=1e-9)
    np.testing.assert_allclose(composed.timestamps_s, [0.002, 1.003, 2.0, 3.001], atol=1e-6)
    np.testing.assert_allclose(composed.features, direct.features, atol=1e-5)
