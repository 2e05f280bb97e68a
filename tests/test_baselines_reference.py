"""bin-max and AKS against outputs worked out by hand from the reference rules (TSPO's bin-max:
nearest of k anchors round(i(T-1)/(k-1)); the AKS code: split/keep recursion, run even at T == k)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tspo.agents import select_aks, select_bin_max


def test_bin_max_uses_nearest_anchor_bins_with_half_width_ends():
    # T=10, k=4: anchors round(i*9/3) = 0,3,6,9 -> bins {0,1} {2,3,4} {5,6,7} {8,9}
    s = torch.tensor([0.2, 0.1, 0.9, 0.3, 0.4, 0.1, 0.5, 0.8, 0.7, 0.6])
    np.testing.assert_array_equal(select_bin_max(s, 4), [0, 2, 7, 8])
    # equal k bins (0-1, 2-4, 5-6, 7-9) would give [0, 2, 6, 7]: the reference differs here
    assert select_bin_max(s, 4).tolist() != [0, 2, 6, 7]


def test_bin_max_ties_and_rounding():
    # T=8, k=4: anchors round(0, 2.33, 4.67, 7) = 0,2,5,7; candidate 1 and 6 sit midway -> earlier anchor:
    # bins {0,1} {2,3} {4,5,6} {7}
    s = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.95, 0.0])
    np.testing.assert_array_equal(select_bin_max(s, 4), [1, 3, 6, 7])
    # T=10, k=3: 4.5 rounds half to even -> anchors 0,4,9; candidate 2 (2 from 0 and 4) -> first bin,
    # 6 (2 from 4, 3 from 9) -> middle: bins {0,1,2} {3..6} {7,8,9}
    np.testing.assert_array_equal(select_bin_max(torch.arange(10.0), 3), [2, 6, 9])
    # a bin of equal scores gives its first candidate
    np.testing.assert_array_equal(select_bin_max(torch.ones(10), 4), [0, 2, 5, 8])
    np.testing.assert_array_equal(select_bin_max(torch.tensor([0.3, 0.9, 0.1]), 1), [1])  # k=1: global best
    np.testing.assert_array_equal(select_bin_max(torch.rand(6), 6), np.arange(6))  # k == T: every candidate
    with pytest.raises(ValueError, match="larger than the number of candidates"):
        select_bin_max(torch.rand(3), 4)


def test_aks_runs_the_recursion_when_t_equals_k():
    # T = k = 12, t1 = 0.2: a segment no longer than k has top-k mean == mean, so nothing stands out and
    # everything splits to depth 3: leaves [0:1] [1:3] [3:4] [4:6] [6:7] [7:9] [9:10] [10:12], each giving
    # int(12 / 8) = 1 frame (its best) -> 8 frames, not all 12.
    s = torch.tensor([0.0, 5, 1, 2, 3, 9, 4, 0, 8, 7, 6, 1])
    np.testing.assert_array_equal(select_aks(s, 12), [0, 1, 3, 5, 6, 8, 9, 10])


def test_aks_keeps_a_standing_out_half_and_may_return_fewer_than_k():
    # T=16, k=4, t1=0.4. Whole: top-4 mean 1, mean (4 + 7.2)/16 = 0.7 -> gap 0.3 <= 0.4 -> split.
    # First half [0,0,0,0,1,1,1,1]: gap 1 - 0.5 = 0.5 > 0.4 -> kept at depth 1: top int(4/2) = 2 -> 4, 5.
    # Second half (flat 0.9): never stands out -> depth-3 leaves, int(4/8) = 0 frames each.
    s = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1] + [0.9] * 8)
    np.testing.assert_array_equal(select_aks(s, 4, t1=0.4), [4, 5])
    # at depth 0 (default t1 = 0.2 < 0.3) the whole video stands out: plain top-4, ties earlier first
    np.testing.assert_array_equal(select_aks(s, 4), [4, 5, 6, 7])
    # the AKS code's own defaults (t1 = 0.8, depth 5) are reachable through the arguments
    assert len(select_aks(s, 4, t1=0.8, max_depth=5)) <= 4
