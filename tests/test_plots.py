"""Plots: PNGs get written with the right content; bad inputs raise clear errors."""

from __future__ import annotations

import csv
import types
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from tspo.plots import (
    PlotInputError,
    moving_average,
    plot_eval_summary,
    plot_selection,
    plot_training_curves,
    read_metrics_csv,
    thumbnail_mosaic,
)


def _selection(k: int = 8, with_frames: bool = True, scores: bool = True) -> types.SimpleNamespace:
    t = np.arange(64, dtype=float)
    s = np.sin(t / 5.0)
    pos = np.sort(np.argsort(-s)[:k])
    frames = np.random.default_rng(0).integers(0, 255, (k, 24, 24, 3), dtype=np.uint8) if with_frames else None
    return types.SimpleNamespace(candidate_timestamps=t, scores=s if scores else None, timestamps=t[pos],
                                 frames=frames, method="tspo")


def _png_shape(path: Path) -> tuple[int, ...]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(path).shape


def test_selection_plot_grows_with_thumbnail_strip(tmp_path: Path) -> None:
    with_strip = plot_selection(_selection(k=20), tmp_path / "a.png", target_spans_s=[[5, 20]], title="t")
    without = plot_selection(_selection(with_frames=False, scores=False), tmp_path / "b.png")
    h_strip, h_plain = _png_shape(with_strip)[0], _png_shape(without)[0]
    assert h_strip > h_plain  # 20 thumbnails = two strip rows below the score curve


def test_selection_plot_rejects_bad_inputs(tmp_path: Path) -> None:
    sel = _selection()
    with pytest.raises(PlotInputError, match="target_spans_s"):
        plot_selection(sel, tmp_path / "x.png", target_spans_s=[[10, 5]])
    with pytest.raises(PlotInputError, match=r"\.png"):
        plot_selection(sel, tmp_path / "x.jpg")
    sel.scores = sel.scores[:10]
    with pytest.raises(PlotInputError, match="same candidates"):
        plot_selection(sel, tmp_path / "x.png")
    empty = _selection()
    empty.timestamps, empty.frames = np.zeros(0), None
    with pytest.raises(PlotInputError, match="empty"):
        plot_selection(empty, tmp_path / "x.png")


def test_thumbnail_mosaic_layout() -> None:
    frames = np.stack([np.full((4, 5, 3), i, np.uint8) for i in range(18)])
    grid = thumbnail_mosaic(frames, per_row=16, gap=2)
    assert grid.shape == (2 * 6, 16 * 7, 3)
    assert grid[0, 0, 0] == 0 and grid[0, 7, 0] == 1 and grid[6, 7, 0] == 17  # row-major
    assert grid[6, 2 * 7, 0] == 255  # empty cells are white
    with pytest.raises(PlotInputError, match="uint8"):
        thumbnail_mosaic(frames.astype(np.float32))


def test_moving_average_is_centred_and_exact() -> None:
    v = np.arange(10, dtype=float)
    np.testing.assert_allclose(moving_average(v, 5)[2:-2], v[2:-2])  # centred in the interior: a line stays exact
    np.testing.assert_allclose(moving_average(v, 5)[[0, -1]], [1.0, 8.0])  # ends: mean of 0..2 and 7..9
    np.testing.assert_allclose(moving_average(v, 1), v)
    # one bad last step must not drag the smoothed end to it (the curve looked like it collapsed)
    steady = np.r_[np.full(99, 0.98), 0.0]
    assert moving_average(steady, 50)[-1] > 0.9
    with pytest.raises(PlotInputError):
        moving_average(v, 0)


def _write_metrics(path: Path, names: list[str], steps: int = 40) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", *names])
        for i in range(steps):
            w.writerow([0, i, *[f"{i / steps:.3f}" if j % 2 == 0 or i % 2 else "" for j in range(len(names))]])


def test_training_curves_from_lightning_csv(tmp_path: Path) -> None:
    csv_path = tmp_path / "logs" / "version_0" / "metrics.csv"
    _write_metrics(csv_path, ["train/reward_step", "train/r_a", "train/r_t", "train/tau", "train/entropy", "lr"])
    series = read_metrics_csv(tmp_path / "logs")  # a log dir is searched for metrics.csv
    assert len(series["train/reward_step"][0]) == 40 and len(series["train/r_a"][0]) == 20  # blanks dropped
    out = plot_training_curves(tmp_path / "logs", tmp_path / "curves.png")
    assert _png_shape(out)[1] > 600


def test_training_curves_of_a_warm_start_only_run(tmp_path: Path) -> None:
    """A run whose logged steps were all warm-start steps (no GRPO metric yet) still plots its greedy
    picks inside the evidence (the demo trained that way raised before)."""
    csv_path = tmp_path / "metrics.csv"
    _write_metrics(csv_path, ["train/loss", "train/in_evidence", "train/coverage", "train/warmstart_skipped"])
    out = plot_training_curves(csv_path, tmp_path / "c.png")
    assert _png_shape(out)[1] > 600


def test_training_curves_need_known_metrics(tmp_path: Path) -> None:
    csv_path = tmp_path / "metrics.csv"
    _write_metrics(csv_path, ["loss"])
    with pytest.raises(PlotInputError, match="none of the training metrics"):
        plot_training_curves(csv_path, tmp_path / "c.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlotInputError, match="no metrics.csv"):
        read_metrics_csv(tmp_path / "empty")


def test_eval_summary_plot(tmp_path: Path) -> None:
    result = {"methods": {"tspo": {"accuracy": 0.9, "target_fraction": 0.8, "seconds_per_sample": 0.01, "n": 4},
                          "uniform": {"accuracy": 0.5, "target_fraction": None, "seconds_per_sample": 0.0, "n": 4}}}
    assert _png_shape(plot_eval_summary(result, tmp_path / "e.png"))[0] > 100
    with pytest.raises(PlotInputError, match="methods"):
        plot_eval_summary({}, tmp_path / "e.png")
