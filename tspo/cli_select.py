"""`tspo select VIDEO QUESTION -k K`: pick frames from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tspo.agents import METHODS
from tspo.settings import add_settings_arguments, check_fps, check_num_frames


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tspo select", description="Pick the k frames of a video that matter for a question.")
    p.add_argument("video", help="video file")
    p.add_argument("question", help="the question the frames should answer")
    p.add_argument("--selector", help="trained selector directory (from `tspo train` or save_pretrained) or hub id")
    p.add_argument("--encoder", help="encoder spec: 'ViT-L-14:openai' (default without --selector), "
                   "'MODEL:/path/weights.bin', or 'tiny-random' (offline, random weights)")
    p.add_argument("--method", default="tspo",
                   help=f"selection method: {' | '.join(METHODS)} or SCORER+RULE (default tspo)")
    add_settings_arguments(p, "saved / plotted frames")
    p.add_argument("--device", default="cpu", help="torch device for the encoder and agent (default cpu)")
    p.add_argument("--json", action="store_true", help="print the selection as JSON")
    p.add_argument("--save-frames", metavar="DIR", help="write the selected frames as JPEG files into DIR")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of the scores over time with the picks marked")
    return p


def _save_frames(selection, directory: Path) -> list[Path]:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, (frame, idx, t) in enumerate(zip(selection.frames, selection.indices, selection.timestamps)):
        path = directory / f"{rank:03d}_frame{int(idx):07d}_{t:09.2f}s.jpg"
        Image.fromarray(frame).save(path, quality=92)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tspo.encoders import EncoderWeightsError
    from tspo.selector import SelectorConfigError, TSPOSelector
    from tspo.video import VideoError

    try:
        if args.num_frames is not None:
            check_num_frames(args.num_frames, "-k/--num-frames")
        if args.fps is not None:
            check_fps(args.fps, "--fps")
        if args.selector:
            selector = TSPOSelector.from_pretrained(args.selector, encoder=args.encoder, device=args.device)
        else:
            selector = TSPOSelector(encoder=args.encoder or "ViT-L-14:openai", device=args.device)
        need_frames = bool(args.save_frames or args.plot)
        selection = selector.select(
            args.video, args.question, args.num_frames, method=args.method, fps=args.fps,
            max_candidates=args.max_candidates, return_frames=need_frames, frame_size=args.frame_size,
        )
    except (VideoError, SelectorConfigError, EncoderWeightsError, ValueError, FileNotFoundError) as err:
        print(f"tspo select: error: {err}", file=sys.stderr)
        return 2
    if args.save_frames:
        _save_frames(selection, Path(args.save_frames))
    if args.plot:
        from tspo.plots import plot_selection

        plot_selection(selection, args.plot, title=args.question)
    if args.json:
        print(json.dumps(selection.to_dict()))
    else:
        print(f"{selection.method}: {len(selection.indices)} of {selection.num_candidates} candidates")
        for idx, t in zip(selection.indices, selection.timestamps):
            print(f"  frame {int(idx):>7d}  at {t:9.2f} s")
    return 0
