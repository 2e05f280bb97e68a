"""benchmarks/bench_shots.py: the boundary statistics behind the shot rule's cut distance (no world is built)."""

from __future__ import annotations

import numpy as np

from benchmarks import bench_shots as bench


def test_boundary_stats_count_cuts_at_and_inside_events():
    times = np.arange(10.0)                          # 1 fps
    shots = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])  # cuts before 3, 5 and 8
    # event [3, 8): both edges cut (before 3 and before 8), one cut inside (before 5)
    assert bench.boundary_stats(times, shots, [[3.0, 8.0]]) == (2, 2, 1, 1)
    # event [0, 4): its start is the video's, no boundary; its end (before 4) is not cut
    assert bench.boundary_stats(times, shots, [[0.0, 4.0]]) == (1, 0, 1, 1)
    # an event past the last candidate counts nothing; one ending at the last candidate has no end boundary
    assert bench.boundary_stats(times, shots, [[20.0, 25.0], [8.0, 10.0]]) == (1, 1, 1, 0)


def test_rows_report_recall_inside_cuts_and_coverage_per_kind():
    result = {"kinds": ["count", "count", "order"], "clusters": ["a", "b", "c"],
              0.1: {"cover": [1.0, 0.0, 1.0], "stats": np.array([10, 9, 4, 2])}}
    (row,) = bench.rows_of("training", result, [0.1])
    assert row["boundary recall"] == "0.900 (of 10)" and row["cuts inside / event"] == "0.50"
    assert row["n (count / order)"] == "2 / 1"
    assert row["clip+shot count"].startswith("0.500 [") and row["clip+shot order"].startswith("1.000 [")


def test_the_best_distance_is_the_best_mean_of_count_and_order_ties_to_the_smaller():
    result = {"kinds": ["count", "count", "order"], "clusters": ["a", "b", "c"],
              0.1: {"cover": [1.0, 0.0, 1.0]}, 0.2: {"cover": [1.0, 1.0, 0.0]}, 0.3: {"cover": [1.0, 1.0, 1.0]},
              0.4: {"cover": [1.0, 1.0, 1.0]}}
    assert bench.best_distance(result, [0.1, 0.2]) == 0.1      # means 0.75 and 0.5
    assert bench.best_distance(result, [0.1, 0.2, 0.4, 0.3]) == 0.3


def test_two_distances_overlap_unless_a_kind_tells_them_apart():
    kinds = ["count"] * 6 + ["order"] * 6
    result = {"kinds": kinds, "clusters": [str(i) for i in range(12)],
              0.1: {"cover": [1.0] * 12}, 0.2: {"cover": [1.0] * 5 + [0.0] + [1.0] * 6},
              0.3: {"cover": [0.0] * 6 + [1.0] * 6}}
    assert bench.overlaps(result, 0.1, 0.2)          # one count needle apart: the intervals overlap
    assert not bench.overlaps(result, 0.1, 0.3)      # count 1.00 vs 0.00: apart
