"""Pictures of what was selected and of how training went (PNG files, matplotlib Agg backend).

- :func:`plot_selection` — the agent's score over time (paper Fig. 5 idea), selected frames marked,
  target spans shaded, and a strip of the selected frames' thumbnails underneath.
- :func:`plot_training_curves` — reward, R_A, R_T, τ and policy entropy from a Lightning
  ``CSVLogger`` ``metrics.csv`` (raw values faint, a moving average on top).
- :func:`plot_eval_summary` — accuracy and fraction-in-target per method from an eval result dict
  (the ``tspo eval`` / ``eval.json`` shape).

All times are seconds. Nothing here needs a display: the Agg backend is selected on import.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tspo.errors import TSPOError
from tspo.spans import in_spans


class PlotInputError(TSPOError, ValueError):
    """A plot was asked for with inputs it cannot draw (the message names the input and the fix)."""


PLOT_SUFFIXES = (".png",)


def check_plot_path(out_path: str | Path) -> Path:
    """``out_path`` as a Path if a plot can be written there (a .png file name), else PlotInputError.

    Cheap (no matplotlib): command lines call it before doing the work the plot shows."""
    out = Path(out_path)
    if out.suffix.lower() not in PLOT_SUFFIXES:
        raise PlotInputError(f"plot file must end in {' or '.join(PLOT_SUFFIXES)}, got {str(out)!r}")
    if out.is_dir():
        raise PlotInputError(f"plot file {str(out)!r} is a directory; give a file name ending in .png")
    # checked before the work: the folder (made if missing) must be creatable and writable
    existing = next(p for p in (out.absolute().parent, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise PlotInputError(f"cannot write plot {str(out)!r}: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PlotInputError(f"cannot write plot {str(out)!r}: folder {str(existing)!r} is not writable")
    return out


def _pyplot():
    """matplotlib.pyplot on the Agg backend, imported on first use (it costs ~1 s)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: a user's DISPLAY must never decide whether a PNG gets written
    import matplotlib.pyplot as plt

    return plt


_TARGET_COLOR = "#f4a261"
_EVIDENCE_COLOR = "#e76f51"
_PICK_COLOR = "#1d3557"
_THUMBS_PER_ROW = 16


def _as_1d(name: str, values: Any, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise PlotInputError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _spans(name: str, spans: Sequence[Sequence[float]] | None) -> np.ndarray:
    """Spans in seconds -> float64[N, 2]; None or [] -> empty [0, 2]."""
    if spans is None or len(spans) == 0:
        return np.zeros((0, 2))
    arr = np.asarray(spans, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or np.any(arr[:, 1] < arr[:, 0]):
        raise PlotInputError(f"{name} must be a list of [start_s, end_s] pairs with start <= end, got {spans!r}")
    return arr


def _inside(times_s: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """bool[k]: whether each time lies in any span, as R_T counts it (``tspo.rewards.in_spans``)."""
    # Imported here: tspo.rewards pulls in torch, and `tspo select` checks --plot paths through this
    # module before it imports torch (an argument error must cost well under a second).

    return in_spans(times_s, spans)


def thumbnail_mosaic(frames: np.ndarray, per_row: int = _THUMBS_PER_ROW, gap: int = 2) -> np.ndarray:
    """uint8[k,H,W,3] -> uint8[rows*(H+gap), per_row*(W+gap), 3] grid, white gaps, row-major order."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise PlotInputError(f"frames must be uint8[k,H,W,3], got {frames.dtype}{list(frames.shape)}")
    k, h, w, _ = frames.shape
    cols = min(per_row, k)
    rows = math.ceil(k / cols)
    padded = np.full((rows * cols, h + gap, w + gap, 3), 255, dtype=np.uint8)
    padded[:k, :h, :w] = frames
    # [rows*cols, h', w', 3] -> [rows, h', cols, w', 3] -> [rows*h', cols*w', 3]
    grid = padded.reshape(rows, cols, h + gap, w + gap, 3).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * (h + gap), cols * (w + gap), 3)


def plot_selection(
    selection: Any,
    out_path: str | Path,
    target_spans_s: Sequence[Sequence[float]] | None = None,
    title: str | None = None,
    evidence_spans_s: Sequence[Sequence[float]] | None = None,
) -> Path:
    """Draw one :class:`tspo.Selection` to a PNG and return its path.

    Uses ``selection.candidate_timestamps`` (float[T] s), ``selection.scores`` (float[T] or None,
    e.g. for uniform), ``selection.timestamps`` (float[k] s) and ``selection.frames``
    (uint8[k,H,W,3] or None: then no thumbnail strip). ``target_spans_s`` / ``evidence_spans_s``
    are ``[[start_s, end_s], ...]`` shaded behind the curve; with target spans, thumbnails are
    labelled green inside a span and red outside.
    """
    cand_t = _as_1d("selection.candidate_timestamps", selection.candidate_timestamps)
    picks_t = _as_1d("selection.timestamps", selection.timestamps)
    if len(picks_t) == 0:
        raise PlotInputError("selection.timestamps is empty: nothing was selected, so there is nothing to plot")
    scores = None if selection.scores is None else _as_1d("selection.scores", selection.scores)
    if scores is not None and len(scores) != len(cand_t):
        raise PlotInputError(
            f"selection.scores has {len(scores)} values but selection.candidate_timestamps has {len(cand_t)}; "
            "they must describe the same candidates"
        )
    targets = _spans("target_spans_s", target_spans_s)
    evidence = _spans("evidence_spans_s", evidence_spans_s)
    frames = getattr(selection, "frames", None)
    if frames is not None and len(frames) != len(picks_t):
        raise PlotInputError(f"selection.frames has {len(frames)} frames for {len(picks_t)} selected timestamps")
    in_target = _inside(picks_t, targets)

    n_rows = 1 if frames is None else 1 + math.ceil(len(frames) / _THUMBS_PER_ROW)
    plt = _pyplot()
    fig = plt.figure(figsize=(12, 3.2 + (1.1 * (n_rows - 1) if frames is not None else 0)), dpi=110)
    grid = fig.add_gridspec(2 if frames is not None else 1, 1,
                            height_ratios=[3, 1.1 * (n_rows - 1)] if frames is not None else [1])
    ax = fig.add_subplot(grid[0])
    for i, (a, b) in enumerate(targets):
        ax.axvspan(a, b, color=_TARGET_COLOR, alpha=0.3, lw=0, label="target span" if i == 0 else None)
    for i, (a, b) in enumerate(evidence):
        ax.axvspan(a, b, color=_EVIDENCE_COLOR, alpha=0.45, lw=0, label="evidence" if i == 0 else None)
    clips = getattr(getattr(selection, "clips", None), "spans_s", None)
    half = 0.5 * float(np.median(np.diff(cand_t))) if len(cand_t) > 1 else 0.5   # a 1-frame clip stays visible
    for i, (a, b) in enumerate(_spans("selection.clips.spans_s", clips)):   # unit="clip" selections
        ax.axvspan(a - half, b + half, ymax=0.08, color=_PICK_COLOR, alpha=0.6, lw=0,
                   label="clips" if i == 0 else None)
    if scores is not None:
        clip_scored = getattr(selection, "method", None) in ("clip", "bin-max", "aks")
        ax.plot(cand_t, scores, color="#457b9d", lw=1.2, label="CLIP similarity" if clip_scored else "agent score S(t)")
        pick_y = np.interp(picks_t, cand_t, scores)
        ax.set_ylabel("score")
        lo, hi = float(np.min(scores)), float(np.max(scores))
        pad = (hi - lo) or 1.0
        ax.set_ylim(lo - 0.05 * pad, hi + 0.35 * pad)  # headroom so the legend never hides the picks
    else:
        ax.plot(cand_t, np.zeros_like(cand_t), "|", color="#457b9d", ms=6, label="candidates")
        pick_y = np.zeros_like(picks_t)
        ax.set_yticks([])
    ax.vlines(picks_t, *ax.get_ylim(), color=_PICK_COLOR, lw=0.6, alpha=0.35)
    ax.plot(picks_t, pick_y, "o", color=_PICK_COLOR, ms=4, label=f"selected (k={len(picks_t)})")
    ax.set_xlim(min(cand_t.min(initial=0.0), picks_t.min()), max(cand_t.max(initial=0.0), picks_t.max()) + 1e-6)
    ax.set_xlabel("time (s)")
    method = getattr(selection, "method", None)
    head = title or f"{method or 'selection'}: {len(picks_t)} of {len(cand_t)} candidates"
    if len(targets):
        head += f" — {in_target.mean():.0%} of picks inside target"
    ax.set_title(head, fontsize=10)
    ax.legend(loc="upper right", fontsize=7, ncol=4, framealpha=0.8)

    if frames is not None:
        tax = fig.add_subplot(grid[1])
        mosaic = thumbnail_mosaic(np.asarray(frames))
        tax.imshow(mosaic, interpolation="nearest")
        tax.set_axis_off()
        h, w = np.asarray(frames).shape[1:3]
        for i, t in enumerate(picks_t):
            r, c = divmod(i, _THUMBS_PER_ROW)
            color = ("#2a9d8f" if in_target[i] else "#d62828") if len(targets) else "black"
            tax.text(c * (w + 2) + w / 2, r * (h + 2) + h + 1, f"{t:.0f}s", ha="center", va="top",
                     fontsize=6, color=color)
    fig.tight_layout()
    return _save(fig, out_path)


def _save(fig, out_path: str | Path) -> Path:
    plt = _pyplot()
    try:
        out = check_plot_path(out_path)
    except PlotInputError:
        plt.close(fig)
        raise
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")  # never clip an axis label
    plt.close(fig)
    return out


# Panels of the training-curve figure: title -> accepted metric names once a `train/`-style prefix
# and a Lightning `_step`/`_epoch` suffix are stripped (the training module's names, plus aliases).
CURVE_PANELS: dict[str, tuple[str, ...]] = {
    "reward": ("reward", "reward_mean", "total_reward", "r"),
    "R_A (accuracy reward)": ("r_a", "reward_accuracy", "accuracy_reward", "reward_a", "ra"),
    "R_T (temporal reward)": ("r_t", "reward_temporal", "temporal_reward", "reward_t", "rt"),
    "τ (temperature)": ("tau", "temperature"),
    "policy entropy": ("entropy", "policy_entropy"),
    # the warm start logs the same share as in_evidence (greedy picks inside the annotated spans)
    "picks inside target": ("target_fraction", "in_target", "frac_in_target", "fraction_in_target", "in_evidence"),
}


def _normalise_metric(name: str) -> str:
    name = name.strip().lower()
    name = re.sub(r"^(train|training)[/_.]", "", name)
    return re.sub(r"_(step|epoch)$", "", name)


def read_metrics_csv(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Lightning ``metrics.csv`` -> {column: (step int64[n], value float64[n])}, empty cells dropped."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise PlotInputError(f"no metrics.csv under {str(path)!r}; pass the CSVLogger's log dir or the file")
        path = found[-1]
    if not path.is_file():
        raise PlotInputError(f"metrics file {str(path)!r} does not exist; pass a Lightning CSVLogger metrics.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "step" not in rows[0]:
        raise PlotInputError(f"{str(path)!r} has no rows or no 'step' column; is it a Lightning CSVLogger file?")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for col in rows[0]:
        if col in {"step", "epoch"}:
            continue
        pairs = [(int(float(r["step"])), float(r[col])) for r in rows if r.get(col) not in (None, "")]
        if pairs:
            steps, vals = zip(*pairs)
            out[col] = (np.asarray(steps, dtype=np.int64), np.asarray(vals, dtype=np.float64))
    return out


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over the points within ``window // 2`` of each point, same length as ``values``.

    Centred (no lag) in the interior; at the ends the window is cut off by the series, not shrunk to
    one point, so the last steps average at least ``window // 2 + 1`` values and one noisy step does
    not look like a collapse of the curve."""
    values = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise PlotInputError(f"window must be >= 1, got {window}")
    csum = np.concatenate([[0.0], np.cumsum(values)])
    centre = np.arange(len(values))
    lo = np.maximum(centre - window // 2, 0)
    hi = np.minimum(centre + window // 2, len(values) - 1)
    return (csum[hi + 1] - csum[lo]) / (hi - lo + 1)


def plot_training_curves(metrics: str | Path, out_path: str | Path, smooth: int = 50) -> Path:
    """Reward, R_A, R_T, τ, entropy (and picks-in-target when logged) vs step, one panel each.

    ``metrics``: a CSVLogger ``metrics.csv`` or a directory holding one (the newest is used).
    Panels whose metric was not logged say so; if none of them was logged this raises.
    """
    series = read_metrics_csv(metrics)
    by_norm = {_normalise_metric(c): c for c in sorted(series, key=lambda c: ("epoch" in c, c))}
    chosen = {title: next((by_norm[a] for a in aliases if a in by_norm), None)
              for title, aliases in CURVE_PANELS.items()}
    if not any(chosen.values()):
        raise PlotInputError(
            f"none of the training metrics {list(CURVE_PANELS)} found in {metrics}; columns are {sorted(series)}"
        )
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), dpi=110)
    for ax, (title, col) in zip(axes.ravel(), chosen.items()):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        if col is None:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        steps, vals = series[col]
        order = np.argsort(steps, kind="stable")
        steps, vals = steps[order], vals[order]
        ax.plot(steps, vals, color="#a8dadc", lw=0.8)
        ax.plot(steps, moving_average(vals, max(1, min(smooth, len(vals) // 5 or 1))), color="#1d3557", lw=1.5)
        ax.grid(alpha=0.3)
    fig.suptitle("TSPO training (faint: per step, dark: moving average)", fontsize=11)
    fig.tight_layout()
    return _save(fig, out_path)


def plot_eval_summary(result: Mapping[str, Any], out_path: str | Path, title: str | None = None) -> Path:
    """Bar chart of accuracy and fraction of picks inside the target per method (eval.json shape)."""
    methods = result.get("methods") if isinstance(result, Mapping) else None
    if not methods:
        raise PlotInputError("result has no 'methods' entry; pass the dict `tspo eval` writes (eval.json)")
    names = list(methods)
    acc = np.array([methods[m]["accuracy"] if methods[m]["accuracy"] is not None else np.nan for m in names])
    frac = np.array([np.nan if methods[m]["target_fraction"] is None else methods[m]["target_fraction"]
                     for m in names])
    x = np.arange(len(names))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 3, 3.6), dpi=110)
    b1 = ax.bar(x - 0.2, acc, 0.4, label="accuracy", color="#457b9d")
    b2 = ax.bar(x + 0.2, np.nan_to_num(frac), 0.4, label="picks inside target", color=_TARGET_COLOR)
    ax.bar_label(b1, labels=[f"{v:.2f}" for v in acc], fontsize=7)
    ax.bar_label(b2, labels=["n/a" if np.isnan(v) else f"{v:.2f}" for v in frac], fontsize=7)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.25)
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    ax.set_title(title or "held-out evaluation", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_path)
