"""Shared set-up of the adapter examples: a selector, a video and a question.

Offline defaults: a ``tiny-random`` selector and a 12-second synthetic clip rendered with PyAV
(a grey level that brightens each second). With real pieces pass ``--selector org/name|DIR``,
``--video FILE`` and ``--question TEXT``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from tspo.selection.selector import TSPOSelector


def parser(description: str, model_help: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--selector", help="selector directory or hub id (default: an untrained tiny-random one)")
    p.add_argument("--video", help="video file (default: a synthetic 12 s clip)")
    p.add_argument("--question", default="What changes on the screen over time?")
    p.add_argument("--num-frames", type=int, default=8)
    p.add_argument("--method", default=None,
                   help="selection method (default: the selector's own, e.g. tspo+shot for a filter selector)")
    p.add_argument("--model", help=model_help)
    return p


def render_demo_video(path: Path, seconds: int = 12, fps: int = 10) -> Path:
    from tspo.video import write_frames

    frames = (np.full((96, 128, 3), 20 * (n // fps) + 10, np.uint8) for n in range(seconds * fps))
    return write_frames(path, frames, fps, options={})


def select(args: argparse.Namespace):
    """Run the selector and return the Selection (with frames) the adapters take."""
    workdir = Path(tempfile.mkdtemp(prefix="tspo-example-"))
    if args.selector:
        selector = TSPOSelector.from_pretrained(args.selector)
    else:  # what `tspo train` writes, round-tripped through save_pretrained / from_pretrained
        directory = TSPOSelector(encoder="tiny-random", cache=False).save_pretrained(workdir / "selector")
        selector = TSPOSelector.from_pretrained(directory, cache=False)
    video = args.video or str(render_demo_video(workdir / "demo.mp4"))
    sel = selector.select(video, args.question, num_frames=args.num_frames, method=args.method, return_frames=True)
    print(
        f"{sel.method}: selected {len(sel.indices)} of {sel.num_candidates} candidates at",
        [round(float(t), 2) for t in sel.timestamps],
        "s",
    )
    return sel
