"""Selections on virtual videos say which segment (and source file) each pick came from."""

from __future__ import annotations

import numpy as np

from tspo.selection.selector import TSPOSelector


def test_clip_listed_twice_gives_segment_ids_and_source_local_indices(short_video):
    sel = TSPOSelector(encoder="tiny-random", cache=False)
    video = [{"source": str(short_video), "start_s": 0, "end_s": 5}] * 2  # 4 fps source, 10 s timeline
    got = sel.select(video, "q?", num_frames=4, method="uniform")
    np.testing.assert_array_equal(got.timestamps, [0.0, 3.0, 6.0, 9.0])
    np.testing.assert_array_equal(got.segment_ids, [0, 0, 1, 1])
    np.testing.assert_array_equal(got.indices, [0, 12, 4, 16])  # frames of the source, at 0, 3, 1, 4 s
    assert got.sources == [str(short_video)] * 4
    assert len({(int(s), int(i)) for s, i in zip(got.segment_ids, got.indices)}) == 4
    as_json = got.to_dict()
    assert as_json["segment_ids"] == [0, 0, 1, 1] and as_json["sources"] == [str(short_video)] * 4
    plain = sel.select(str(short_video), "q?", num_frames=4, method="uniform")
    assert plain.segment_ids is None and "segment_ids" not in plain.to_dict()
