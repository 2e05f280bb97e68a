"""Plug-ins with coarse-to-fine selections: the lmms-eval wrapper's strategy=zoom, llava's duration."""

from __future__ import annotations

import numpy as np
import pytest
from test_plugins_lmms_eval import QUESTION, _load_cls, _request, assets, fake_vid, lmms_eval  # noqa: F401 (fixtures)

from tspo.selector import TSPOSelector
from tspo.zoom import ZoomConfig


def test_lmms_eval_wrapper_zoom_strategy(lmms_eval, fake_vid, assets):  # noqa: F811
    video, selector_dir = assets
    model = _load_cls().create_from_arg_string(
        f"base_model=fake_vid,selector={selector_dir},num_frames=3,strategy=zoom,coarse_candidates=4,"
        "zoom_spans=1,max_frames_encoded=8")
    assert model.zoom == ZoomConfig(coarse_candidates=4, num_spans=1, max_frames=8)
    model.task_dict = {"videoqa": {"test": {0: {"video": str(video)}}}}
    model.generate_until([_request(lmms_eval)])
    sel = model.last_selections[0]
    assert sel.strategy == "zoom" and len(sel.timestamps) == 3 and sel.frames_encoded <= 8
    direct = TSPOSelector.from_pretrained(selector_dir, cache=False).select(
        str(video), QUESTION, num_frames=3, strategy="zoom", zoom=model.zoom)
    np.testing.assert_array_equal(direct.timestamps, sel.timestamps)
    with pytest.raises(ValueError, match="strategy"):
        _load_cls()(base_model="fake_vid", selector=str(selector_dir), strategy="pyramid")


def test_llava_duration_of_a_zoom_selection(assets):  # noqa: F811
    from tspo.plugins.llava import video_duration_s

    video, selector_dir = assets
    sel = TSPOSelector.from_pretrained(selector_dir, cache=False).select(
        str(video), "q", num_frames=3, strategy="zoom", zoom=ZoomConfig(coarse_candidates=4, num_spans=1, max_frames=8))
    # the pool's last time + its spacing would say ~10 s; a zoom selection knows the real length
    assert sel.duration_s == pytest.approx(12.0) and video_duration_s(sel) == pytest.approx(12.0)
    assert np.all(np.diff(sel.candidate_timestamps) > 0)
