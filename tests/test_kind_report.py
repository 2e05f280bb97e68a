"""Bootstrap intervals over target clips and the per-kind tables (tspo.evaluation.kind_report)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tspo.evaluation.kind_report import (
    cluster_bootstrap,
    cluster_of,
    format_difference_table,
    format_kind_table,
    identical_picks,
    kind_differences,
    kind_table,
    paired_bootstrap,
)


def _coin(n_clusters: int, per: int = 2, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """0/1 values, ``per`` needles per cluster sharing the cluster's value (fully correlated)."""
    v = np.random.default_rng(seed).integers(0, 2, n_clusters).astype(float)
    return np.repeat(v, per), [f"c{i}" for i in range(n_clusters) for _ in range(per)]


def test_interval_contains_the_mean_and_shrinks_with_more_target_clips():
    widths = []
    for n in (20, 80, 320):
        vals, clusters = _coin(n)
        lo, hi = cluster_bootstrap(vals, clusters)
        assert lo <= vals.mean() <= hi and lo < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] < 0.75 * widths[0] and widths[2] < 0.75 * widths[1]      # ~1/sqrt(clusters)


def test_needles_of_one_clip_are_one_draw():
    # 40 needles from 4 clips are as uncertain as 4 needles, far more than 40 independent ones
    vals, clusters = _coin(4, per=10, seed=3)
    lo, hi = cluster_bootstrap(vals, clusters)
    lo_i, hi_i = cluster_bootstrap(vals, [str(i) for i in range(len(vals))])
    assert hi - lo > 1.5 * (hi_i - lo_i)


def test_deterministic_per_seed():
    vals, clusters = _coin(30, seed=1)
    assert cluster_bootstrap(vals, clusters, seed=7) == cluster_bootstrap(vals, clusters, seed=7)
    assert paired_bootstrap(vals, vals[::-1], clusters, seed=7) == paired_bootstrap(vals, vals[::-1], clusters, seed=7)
    draws = {cluster_bootstrap(vals, clusters, num=200, seed=s) for s in range(5)}
    assert len(draws) > 1                                                  # the seed is used


def test_paired_difference():
    vals, clusters = _coin(30, seed=2)
    assert paired_bootstrap(vals, vals, clusters) == (0.0, 0.0, 0.0)
    better = np.minimum(vals + (np.arange(vals.size) % 3 == 0), 1.0)       # a method that wins on some needles
    diff, lo, hi = paired_bootstrap(better, vals, clusters)
    assert diff == pytest.approx(float((better - vals).mean())) and 0.0 < lo <= diff <= hi
    # pairing: a shared per-clip effect cancels, so the paired interval is narrower than the two apart
    noisy = np.repeat(np.random.default_rng(5).normal(size=30), 2)
    _, plo, phi = paired_bootstrap(noisy + 0.1, noisy, clusters)
    assert phi - plo < 1e-9 and plo == pytest.approx(0.1)
    with pytest.raises(ValueError, match="same needles"):
        paired_bootstrap([1.0, 0.0], [1.0], ["a", "b"])
    with pytest.raises(ValueError, match="level"):
        cluster_bootstrap([1.0], ["a"], level=95)


def _sample(i: int, kind: str, target: str):
    return SimpleNamespace(id=f"s{i}", video=[{"source": "x.mp4"}], extra={"qa_kind": kind, "target_id": target})


def _result(outcomes):
    return {"samples": [{"sample_id": sid, "method": m, "correct": c, "timestamps_s": t} for sid, m, c, t in outcomes]}


def test_kind_tables_and_differences_from_outcomes():
    samples = [_sample(i, "after" if i < 6 else "colour", f"t{i // 2}") for i in range(10)]    # 2 needles per clip
    out = []
    for s in samples:
        i = int(s.id[1:])
        out += [(s.id, "clip", i % 2 == 0, [1.0, 2.0]), (s.id, "tspo", i % 3 != 2, [1.0, 2.0]),
                (s.id, "aks", i % 2 == 0, [2.0, 1.0] if i < 9 else [3.0, 1.0])]
    result = _result(out)
    table = kind_table(result, samples, num=500)
    after = table["after"]["clip"]
    assert after["n"] == 6 and after["targets"] == 3 and after["coverage"] is None and after["coverage_ci"] is None
    assert after["accuracy"] == pytest.approx(0.5)
    assert after["accuracy_ci"][0] <= 0.5 <= after["accuracy_ci"][1]
    assert table["all"]["tspo"]["targets"] == 5
    text = format_kind_table(table, ["tspo", "clip"])
    assert text.splitlines()[0] == "| kind | n | clips | tspo | clip |"
    assert "| after | 6 | 3 | " in text and "| all | 10 | 5 | " in text and text.splitlines()[-1].startswith("| all")
    assert f"0.50 [{after['accuracy_ci'][0]:.2f}, {after['accuracy_ci'][1]:.2f}] / -" in text

    same = kind_differences(result, samples, "aks", "clip", metric="accuracy")
    assert all(d["diff"] == 0.0 and d["ci"] == [0.0, 0.0] for d in same.values())
    diff = kind_differences(result, samples, "tspo", "clip", metric="accuracy")
    assert diff["all"]["n"] == 10 and diff["all"]["diff"] == pytest.approx(
        np.mean([(i % 3 != 2) - (i % 2 == 0) for i in range(10)]))
    md = format_difference_table({"tspo − clip": diff})
    assert md.splitlines()[0] == "| kind | n | tspo − clip |"
    assert f"| all | 10 | {diff['all']['diff']:+.2f} [" in md
    with pytest.raises(ValueError, match="no needle"):
        kind_differences(result, samples, "tspo", "nope", metric="accuracy")
    with pytest.raises(ValueError, match="metric"):
        kind_differences(result, samples, "tspo", "clip", metric="recall")
    # same frames in another order count as identical; one needle differs
    assert identical_picks(result, "aks", "clip") == (9, 10)


def test_cluster_of_falls_back_to_the_video_then_the_id():
    assert cluster_of(SimpleNamespace(id="a", video="v.mp4", extra={"target_id": "t1"})) == "t1"
    assert cluster_of(SimpleNamespace(id="a", video="v.mp4", extra={})) == "v.mp4"
    assert cluster_of(SimpleNamespace(id="a", video=[{"source": "v.mp4"}], extra={})) == "a"
