"""`tspo select VIDEO QUESTION -k K`: pick frames from the command line.

Arguments are checked before anything heavy is imported (torch, open_clip take seconds), so a
typo costs well under a second. Exit codes: 0 done, 2 usage error (the message names the argument
and the fix), 1 the work itself failed (unreadable video, broken selector files, ...).
"""

from __future__ import annotations

# Lazy loads, on purpose: the modules that bring torch, open_clip or Lightning are imported inside
# the command's functions, so `--help` and argument errors answer before they load
# (tests/test_cli_behaviour.py checks it). Everything else is imported here.
import argparse
import json
import sys
from pathlib import Path

from tspo.console import plain_warnings
from tspo.errors import TSPOError
from tspo.selection.clips import add_clip_arguments, clip_options_from_args
from tspo.selection.zoom_config import add_zoom_arguments, zoom_config_from_args
from tspo.settings import (
    DEFAULT_ENCODER,
    add_settings_arguments,
    check_fps,
    check_frame_size,
    check_max_candidates,
    check_num_frames,
)

EXAMPLES = """examples:
  tspo select clip.mp4 "When does the dog jump?" -k 8 --encoder tiny-random
  tspo select clip.mp4 "What is on the table?" --selector runs/exp1/selector --json --scores
  tspo select clip.mp4 "Who enters?" --method aks --plot picks.png --save-frames picks/
  tspo select lecture.mp4 "When is the proof shown?" --selector runs/exp1/selector --strategy zoom
  tspo select clip.mp4 "What happens after the dog jumps?" -k 8 --clips --token-model qwen2-vl --json
  tspo select clip.mp4 "Which came first, the red circle or the blue square?" --selector runs/filter/selector \
      --option "the red circle" --option "the blue square"      # a filter selector's own method: tspo+shot

exit codes: 0 done, 1 the selection failed, 2 bad arguments."""


class UsageError(TSPOError, ValueError):
    """A command-line argument that cannot work (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tspo select", description="Pick the k frames of a video that matter for a question.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("video", help="video file")
    p.add_argument("question", help="the question the frames should answer")
    p.add_argument("--option", action="append", dest="options", metavar="TEXT",
                   help="a multiple-choice option (repeat for each, e.g. --option 'the red circle' --option 'the "
                        "blue square'); a filter-family selector looks for them too, other methods ignore them")
    p.add_argument("--selector", help="trained selector directory (from `tspo train` or save_pretrained) or hub id")
    p.add_argument("--encoder", help=f"encoder spec: '{DEFAULT_ENCODER}' (default without --selector), "
                   "'MODEL:/path/weights.bin', or 'tiny-random' (offline, random weights)")
    # Validated after the cheap checks (the method registry lives with torch code, tspo.agents);
    # an unknown name gets the full list.
    p.add_argument("--method", default=None,
                   help="selection method, e.g. tspo, tspo+shot, tspo+nms, uniform, clip, aks, or SCORER+RULE such as tspo+aks "
                        "(default: the selector's own, e.g. tspo+shot for a filter selector, tspo for the paper's "
                        "agent and without --selector)")
    add_settings_arguments(p, "saved / plotted frames")
    p.add_argument("--feature-cache", metavar="DIR", help="candidate feature cache (default $TSPO_CACHE/features; "
                   "a training run's RUN/feature_cache works too)")
    p.add_argument("--device", default="cpu", help="torch device for the encoder and agent (default cpu)")
    p.add_argument("--json", action="store_true", help="print the selection as JSON")
    p.add_argument("--scores", action="store_true", help="with --json: add every candidate's time and score")
    p.add_argument("--save-frames", metavar="DIR", help="write the selected frames as JPEG files into DIR")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of the scores over time with the picks marked")
    add_zoom_arguments(p)
    add_clip_arguments(p)
    return p


def check_args(args: argparse.Namespace) -> None:
    """Everything about the arguments that can be checked without torch; raises UsageError."""
    video = Path(args.video).expanduser()
    if not video.exists():
        raise UsageError(f"video file {args.video!r} does not exist; check the path (relative paths resolve "
                         f"from {str(Path.cwd())!r})")  # fmt: skip
    if not video.is_file():
        raise UsageError(f"video {args.video!r} is a directory, not a video file")
    if not args.question.strip():
        raise UsageError("question must be a non-empty string")
    if args.options and not all(o.strip() for o in args.options):
        raise UsageError(f"--option must be a non-empty text, got {args.options!r}")
    try:  # None = the selector's value
        if args.num_frames is not None:
            check_num_frames(args.num_frames, "-k/--num-frames")
        if args.fps is not None:
            check_fps(args.fps, "--fps")
        if args.max_candidates is not None:
            check_max_candidates(args.max_candidates, "--max-candidates")
        if args.frame_size is not None:
            check_frame_size(args.frame_size, "--frame-size")
        args.zoom_config = zoom_config_from_args(args)
        args.clip_options = clip_options_from_args(args)
    except ValueError as err:
        raise UsageError(str(err)) from err
    if args.scores and not args.json:
        raise UsageError("--scores adds the scores to the --json output; pass --json too")
    if args.plot:
        from tspo.plots import PlotInputError, check_plot_path

        try:
            check_plot_path(args.plot)
        except PlotInputError as err:
            raise UsageError(f"--plot: {err}") from err
    if args.feature_cache and Path(args.feature_cache).exists() and not Path(args.feature_cache).is_dir():
        raise UsageError(f"--feature-cache {args.feature_cache!r} is a file; give a directory")
    if args.save_frames and Path(args.save_frames).exists() and not Path(args.save_frames).is_dir():
        raise UsageError(f"--save-frames {args.save_frames!r} is an existing file; give a directory")
    if args.save_frames and Path(args.save_frames).is_dir() and any(Path(args.save_frames).iterdir()):
        # frames of an earlier selection would mix with this one's
        raise UsageError(f"--save-frames {args.save_frames!r} is not empty; give a new or empty folder")


def check_runtime_args(args: argparse.Namespace) -> None:
    """Checks that need torch / the method list, still before any encoder loads; raises UsageError."""
    import torch

    from tspo.agents.methods import get_method

    try:
        if args.method is not None:  # None: the selector's own, known once it is loaded
            get_method(args.method)
    except ValueError as err:
        raise UsageError(f"--method: {err}") from err
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        raise UsageError(f"--device {args.device!r} is not a torch device (cpu, cuda, cuda:1, mps): {err}") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: this machine has no CUDA GPU torch can use; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {args.device}: MPS is not available here; use --device cpu")


def _save_frames(selection, directory: Path) -> list[Path]:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, (frame, idx, t) in enumerate(zip(selection.frames, selection.indices, selection.timestamps)):
        path = directory / f"{rank:03d}_frame{int(idx):07d}_{t:09.2f}s.jpg"
        Image.fromarray(frame).save(path, quality=92)
        paths.append(path)
    return paths


def _error(message: object, code: int) -> int:
    print(f"tspo select: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:

    with plain_warnings("tspo select"):
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
        check_runtime_args(args)
    except UsageError as err:
        return _error(err, 2)

    from tspo.features.cache import FeatureCache
    from tspo.features.encoders import EncoderWeightsError
    from tspo.selection.selector import SelectorConfigError, SelectorWeightsError, TSPOSelector
    from tspo.video import VideoError

    cache = FeatureCache(args.feature_cache) if args.feature_cache else None
    try:
        if args.selector:
            selector = TSPOSelector.from_pretrained(args.selector, encoder=args.encoder, device=args.device, cache=cache)
        else:
            selector = TSPOSelector(encoder=args.encoder or DEFAULT_ENCODER, device=args.device, cache=cache)
        selector.settings = selector.settings.override(cut_distance=args.cut_distance)   # the shot rule's cut
    except (EncoderWeightsError, SelectorWeightsError) as err:
        return _error(err, 1)
    except (SelectorConfigError, ValueError) as err:  # not a selector folder; an unknown encoder spec / tag
        return _error(err, 2)
    try:
        need_frames = bool(args.save_frames or args.plot)
        selection = selector.select(
            args.video, args.question, args.num_frames, method=args.method, fps=args.fps,
            max_candidates=args.max_candidates, return_frames=need_frames, frame_size=args.frame_size,
            strategy=args.strategy, zoom=args.zoom_config, options=args.options, **args.clip_options,
        )  # fmt: skip
    except (VideoError, ValueError, OSError, EncoderWeightsError) as err:  # weights load lazily, on a cache miss
        return _error(err, 1)
    # With --json, stdout is the JSON alone; where files went is said on stderr.
    notes = sys.stderr if args.json else sys.stdout
    if args.save_frames:
        paths = _save_frames(selection, Path(args.save_frames))
        print(f"wrote {len(paths)} frames to {args.save_frames}", file=notes)
    if args.plot:
        from tspo.plots import plot_selection

        print(f"wrote plot to {plot_selection(selection, args.plot, title=args.question)}", file=notes)
    if args.json:
        print(json.dumps(selection.to_dict(scores=args.scores)))
    else:
        print(f"{selection.method}: {len(selection.indices)} of {selection.num_candidates} candidates")
        if selection.zoom is not None:
            spans = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in selection.zoom.spans_s)
            print(f"  zoom: {selection.zoom.frames_encoded} frames encoded; spans visited: {spans}")
        if selection.clips is not None:
            p = selection.clips.token_plan
            spans = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in selection.clips.spans_s)
            print(f"  clips: {spans}; {p.num_frames} frames of {p.height}x{p.width} px, {p.tokens} of {p.budget} "
                  f"{p.model} tokens")
        for idx, t in zip(selection.indices, selection.timestamps):
            print(f"  frame {int(idx):>7d}  at {t:9.2f} s")
    return 0
