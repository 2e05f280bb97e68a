"""`tspo plot SOURCE --out FILE.png`: redraw a picture from what a command left on disk.

SOURCE is one of
- a training run folder (its newest ``metrics.csv``) or a ``metrics.csv``: the training curves;
- an ``eval.json`` from ``tspo eval --out``: accuracy and picks-in-target per method;
- the JSON of ``tspo select --json --scores``: the scores over time with the picks marked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tspo.plots import (
    PlotInputError,
    check_plot_path,
    plot_eval_summary,
    plot_selection,
    plot_training_curves,
)

EXAMPLES = """examples:
  tspo plot runs/synthetic_needle --out curves.png
  tspo plot eval.json --out eval.png
  tspo select clip.mp4 "Who enters?" --json --scores > picks.json && tspo plot picks.json --out picks.png"""


def _selection_from_json(data: dict) -> SimpleNamespace:
    """The fields :func:`tspo.plots.plot_selection` reads, from ``Selection.to_dict(scores=True)``."""
    return SimpleNamespace(
        timestamps=np.asarray(data["timestamps"], dtype=np.float64),
        candidate_timestamps=np.asarray(data["candidate_timestamps"], dtype=np.float64),
        scores=None if data.get("scores") is None else np.asarray(data["scores"], dtype=np.float64),
        frames=None,
    )


def plot_source(source: str | Path, out: str | Path, smooth: int = 50) -> tuple[Path, str]:
    """Draw ``source`` (see the module docstring) to ``out``; returns (path, what was drawn)."""
    source = Path(source)
    if source.is_dir() or source.suffix == ".csv":
        return plot_training_curves(source, out, smooth=smooth), "training curves"
    if not source.is_file():
        raise PlotInputError(f"{str(source)!r} does not exist; pass a run folder, metrics.csv, eval.json or "
                             "the JSON of `tspo select --json --scores`")  # fmt: skip
    try:
        data = json.loads(source.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PlotInputError(
            f"{str(source)!r} is not JSON ({err}); pass a run folder, metrics.csv or a JSON result"
        ) from None
    if isinstance(data, dict) and "methods" in data:
        return plot_eval_summary(data, out), "evaluation summary"
    if isinstance(data, dict) and "timestamps" in data:
        if "candidate_timestamps" not in data:
            raise PlotInputError(f"{str(source)!r} has the picks but not the candidates' scores; "
                                 "make it with `tspo select ... --json --scores`")  # fmt: skip
        return plot_selection(_selection_from_json(data), out, title=data.get("method")), "selection"
    raise PlotInputError(f"{str(source)!r} is neither an eval.json (no 'methods') nor a selection (no 'timestamps')")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tspo plot", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("source", help="run folder, metrics.csv, eval.json, or `tspo select --json --scores` output")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--smooth", type=int, default=50, help="training curves: moving-average window in steps")
    args = p.parse_args(argv)
    try:
        check_plot_path(args.out)
        path, what = plot_source(args.source, args.out, args.smooth)
    except PlotInputError as err:
        print(f"tspo plot: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {what} to {path}")
    return 0
