"""Plug-ins with coarse-to-fine selections: llava's duration of a zoom selection.

The lmms-eval wrapper's ``strategy=zoom`` is tested against the real lmms-eval in
``tests/test_plugins_lmms_eval_real.py`` (``make test-lmms``)."""

from __future__ import annotations

import numpy as np
import pytest
from plugins_helpers import render_time_coded_video

from tspo.plugins.llava import video_duration_s
from tspo.selection.selector import TSPOSelector
from tspo.selection.zoom import ZoomConfig


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoom_plugins")
    video = render_time_coded_video(root / "clip.mp4", seconds=12)
    selector_dir = TSPOSelector(encoder="tiny-random", cache=False).save_pretrained(root / "selector")
    return video, selector_dir


def test_llava_duration_of_a_zoom_selection(assets):
    video, selector_dir = assets
    sel = TSPOSelector.from_pretrained(selector_dir, cache=False).select(
        str(video), "q", num_frames=3, strategy="zoom", zoom=ZoomConfig(coarse_candidates=4, num_spans=1, max_frames=8))
    # the pool's last time + its spacing would say ~10 s; a zoom selection knows the real length
    assert sel.zoom.duration_s == pytest.approx(12.0) and video_duration_s(sel) == pytest.approx(12.0)
    assert np.all(np.diff(sel.candidate_timestamps) > 0)
