"""``tspo synth render|needle|world|filter|qa|validate|encoder``: build and check TSPO training manifests,
make the whole question world of the benchmark in one command, and train the small open_clip encoder of
the synthetic world."""

from __future__ import annotations

# Lazy loads, on purpose: the modules that bring torch, open_clip or Lightning are imported inside
# the command's functions, so `--help` and argument errors answer before they load
# (tests/test_cli_behaviour.py checks it). Everything else is imported here.
import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from tspo.data_synth.events import QUESTION_KINDS
from tspo.data_synth.needle import TARGET_ORDERS
from tspo.manifest import ManifestError, _relative, iter_manifest, load_manifest, write_manifest
from tspo.progress import progress_bar
from tspo.rewards.factory import SPEC_HELP
from tspo.settings import DEFAULT_FPS, DEFAULT_FRAME_SIZE, DEFAULT_MAX_CANDIDATES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tspo synth", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  tspo synth render --out data/synthetic --num 32 --seed 0")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("render", help="render synthetic clips with exact ground truth (+ DIR/manifest.jsonl)")
    r.add_argument("--out", required=True, help="output directory (videos/ and manifest.jsonl)")
    r.add_argument("--num", type=int, required=True, help="number of videos")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--family", choices=("target", "distractor"), default="target",
                   help="target: shape clips with QA; distractor: texture haystack videos")
    r.add_argument("--min-seconds", type=int, default=60)
    r.add_argument("--max-seconds", type=int, default=180)
    r.add_argument("--fps", type=int, default=4, help="frames per second of the rendered video")
    r.add_argument("--size", type=int, default=96, help="frame width = height in pixels (even)")
    r.add_argument("--event-seconds", type=int, nargs=2, default=(3, 6), metavar=("MIN", "MAX"))
    r.add_argument("--num-options", type=int, default=4)
    r.add_argument("--kinds", nargs="+", default=list(QUESTION_KINDS), choices=QUESTION_KINDS)

    n = sub.add_parser("needle", help="compose long virtual needle-in-a-haystack samples")
    n.add_argument("--targets", required=True, help="manifest of target clips with QA")
    n.add_argument("--distractors", default=None,
                   help="directory of haystack videos, or a manifest (optional with --confuser-ratio 1)")
    n.add_argument("--out", required=True, help="output directory (manifest.jsonl, videos/ with --materialize)")
    n.add_argument("--num", type=int, required=True)
    n.add_argument("--min-minutes", type=float, default=10.0)
    n.add_argument("--max-minutes", type=float, default=60.0)
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--repeats", type=int, nargs=2, default=(1, 4), metavar=("MIN", "MAX"))
    n.add_argument("--target-fraction", type=float, nargs=2, default=(0.12, 0.25), metavar=("MIN", "MAX"),
                   help="share of the timeline the target material should cover")
    n.add_argument("--any-fraction", action="store_true", help="ignore --target-fraction (uniform duration)")
    n.add_argument("--segment-seconds", type=float, nargs=2, default=(10.0, 60.0), metavar=("MIN", "MAX"))
    n.add_argument("--target-segment-seconds", type=float, nargs=2, default=(10.0, 30.0), metavar=("MIN", "MAX"),
                   help="each repetition of the target is cut into segments of this length")
    n.add_argument("--target-order", choices=TARGET_ORDERS, default="shuffle",
                   help="shuffle: every target segment placed on its own (paper); ordered: scattered but each "
                        "repetition's segments in order; contiguous: each repetition in one piece")
    n.add_argument("--confusers", default=None,
                   help="manifest of target-family clips (tspo synth render) to cut confuser haystack from")
    n.add_argument("--confuser-ratio", type=float, default=0.0,
                   help="share of the haystack cut from --confusers (0-1; 1 = no texture haystack needed)")
    n.add_argument("--fps", type=float, default=DEFAULT_FPS, help="candidate grid: cuts are multiples of 1/fps s")
    n.add_argument("--materialize", action="store_true", help="also write each sample as a lossless mp4")
    n.add_argument("--root", default=None, help="root that the manifests' paths must stay inside")

    w = sub.add_parser("world", help="the whole question world of `python -m benchmarks question` in one command: "
                                     "target clips, confuser haystacks, train and held-out needles")
    w.add_argument("--out", required=True, help="output directory (train/manifest.jsonl, val/manifest.jsonl, clips)")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--num-train", type=int, default=None,
                   help="training needles (default: the benchmark's, tspo.training.synth.QUESTION_WORLD_NUM_TRAIN)")
    w.add_argument("--num-val", type=int, default=None,
                   help="held-out needles (default: the benchmark's, QUESTION_WORLD_NUM_VAL)")

    f = sub.add_parser("filter", help="drop samples too easy (4 frames) or too hard (64 frames) for an oracle")
    f.add_argument("--manifest", required=True)
    f.add_argument("--out", required=True, help="manifest of the kept samples")
    f.add_argument("--oracle", default="simulated", help=f"oracle spec: {SPEC_HELP}")
    f.add_argument("--encoder", default="tiny-random", help="encoder spec for --oracle clip")
    f.add_argument("--frame-size", type=int, default=DEFAULT_FRAME_SIZE,
                   help="short side in px of the whole frames shown to oracles that need pixels")
    f.add_argument("--easy-frames", type=int, default=4)
    f.add_argument("--hard-frames", type=int, default=64)
    f.add_argument("--fps", type=float, default=DEFAULT_FPS)
    f.add_argument("--max-candidates", type=int, default=DEFAULT_MAX_CANDIDATES)
    f.add_argument("--seed", type=int, default=0, help="seed of the simulated oracle's guesses")
    f.add_argument("--root", default=None)

    q = sub.add_parser("qa", help="rewrite questions to localise clips (QA augmentation)")
    q.add_argument("--manifest", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--captioner", choices=("annotation", "hf"), default="annotation")
    q.add_argument("--model", default=None, help="image-text model dir or hub id for --captioner hf")
    q.add_argument("--every-seconds", type=float, default=2.0)
    q.add_argument("--num-options", type=int, default=4)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--root", default=None)

    e = sub.add_parser("encoder", help="train the small open_clip encoder of the synthetic world (tspo-synth)")
    e.add_argument("--out", required=True, help="output directory (open_clip_model.safetensors + open_clip_config.json)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--steps", type=int, default=None, help="training steps (default: the shipped encoder's)")
    e.add_argument("--threads", type=int, default=None, help="torch threads (default 1: fastest on a busy CPU)")

    v = sub.add_parser("validate", help="check a manifest line by line")
    v.add_argument("manifest")
    v.add_argument("--root", default=None)
    v.add_argument("--check-files", action="store_true", help="also check that every video file exists")
    return p


def _render(a) -> int:
    from tspo.data_synth.render import render_dataset

    t0 = time.perf_counter()
    samples = render_dataset(a.out, a.num, a.seed, a.family, a.min_seconds, a.max_seconds, a.fps, a.size,
                             tuple(a.event_seconds), a.num_options, tuple(a.kinds))
    path = write_manifest(Path(a.out) / "manifest.jsonl", samples)
    secs = sum(s.duration_s for s in samples)
    kinds = Counter(s.extra.get("qa_kind", a.family) for s in samples)
    print(f"rendered {len(samples)} {a.family} video(s), {secs / 60:.1f} min in {time.perf_counter() - t0:.1f} s; "
          f"questions: {dict(kinds)}\nmanifest: {path}")
    return 0


def _needle(a) -> int:
    from tspo.data_synth.media import materialize
    from tspo.data_synth.needle import NeedleConfig, compose_needles, find_videos

    cfg = NeedleConfig(a.min_minutes, a.max_minutes, tuple(a.repeats),
                       None if a.any_fraction else tuple(a.target_fraction), tuple(a.segment_seconds), a.fps,
                       target_segment_seconds=tuple(a.target_segment_seconds), target_order=a.target_order,
                       confuser_ratio=a.confuser_ratio)
    targets = load_manifest(a.targets, a.root)
    confusers = load_manifest(a.confusers, a.root) if a.confusers else []
    distractors = find_videos(a.distractors, a.root) if a.distractors else []
    samples, report = compose_needles(targets, distractors, a.num, a.seed, cfg, confusers=confusers)
    out = Path(a.out)
    if a.materialize:
        from dataclasses import replace

        done = []
        for s in progress_bar(samples, desc="materialize", unit="video"):
            mp4 = materialize(s.video, out / "videos" / f"{s.id}.mp4")
            # provenance; like the manifest's own paths, relative to the manifest's directory
            segments = [{**seg, "source": _relative(seg["source"], out)} for seg in s.video]
            done.append(replace(s, video=str(mp4), extra={**s.extra, "segments": segments}))
        samples = done
    path = write_manifest(out / "manifest.jsonl", samples)
    print(f"{report.summary()}\nmanifest: {path}")
    return 0


def _world(a) -> int:
    from tspo.training.synth import ensure_synthetic, question_world

    sizes = {k: v for k, v in (("num_train", a.num_train), ("num_val", a.num_val)) if v is not None}
    if any(v < 1 for v in sizes.values()):
        raise ValueError(f"--num-train and --num-val must be >= 1, got {sizes}")
    cfg = question_world(a.out, seed=a.seed, **sizes)
    t0 = time.perf_counter()
    train, val = ensure_synthetic(cfg, progress=sys.stderr.isatty())
    print(f"question world ({cfg.num_train} training / {cfg.num_val} held-out needles, seed {cfg.seed}) in "
          f"{time.perf_counter() - t0:.0f} s; settings: {Path(a.out) / 'synth_config.json'}\n"
          f"train manifest: {train}\nheld-out manifest: {val}\n"
          f"baselines with the synthetic world's encoder (shipped): tspo eval --manifest {val} --encoder tspo-synth "
          "--methods uniform,clip,bin-max,aks -k 8 --max-candidates 600  # every second, as the benchmark")
    return 0


def _filter(a) -> int:
    from tspo.data_synth.filter import filter_samples

    samples = load_manifest(a.manifest, a.root)
    from tspo.features.encoders import load_encoder
    from tspo.rewards import build_oracle

    encoder = load_encoder(a.encoder) if a.oracle == "clip" else None
    oracle = build_oracle(a.oracle, encoder=encoder, seed=a.seed)
    kept, report = filter_samples(samples, oracle, a.easy_frames, a.hard_frames, a.fps, a.max_candidates,
                                  frame_size=a.frame_size)
    out = Path(a.out)
    if kept:
        write_manifest(out, kept)
    rep = out.with_name(out.stem + ".filter_report.json")
    rep.write_text(json.dumps({"kept": report.kept, "too_easy": report.too_easy, "too_hard": report.too_hard,
                               "failed": report.failed, "reasons": report.reasons}, indent=1))
    print(f"{report.summary()}\nmanifest: {out if kept else '(none kept, nothing written)'}\nreport: {rep}")
    return 0


def _qa(a) -> int:
    from tspo.data_synth.captioners import AnnotationCaptioner, HFCaptioner
    from tspo.data_synth.qa import augment_samples

    samples = load_manifest(a.manifest, a.root)
    if a.captioner == "hf":
        if not a.model:
            raise ValueError("--captioner hf needs --model (a local image-text model directory or hub id)")
        captioner = HFCaptioner.from_pretrained(a.model, every_s=a.every_seconds)
    else:
        captioner = AnnotationCaptioner()
    out = augment_samples(samples, captioner, a.seed, a.num_options)
    path = write_manifest(a.out, out)
    styles = Counter(s.extra["qa_style"] for s in out)
    print(f"rewrote {len(out)} question(s): {dict(styles)}\nmanifest: {path}")
    return 0


def _encoder(a) -> int:
    from dataclasses import replace

    from tspo.data_synth.encoder_training import EncoderTrainConfig, save_encoder, train_encoder

    cfg = EncoderTrainConfig(seed=a.seed)
    cfg = replace(cfg, **{k: v for k, v in (("steps", a.steps), ("threads", a.threads)) if v is not None})
    if cfg.steps < 1 or cfg.threads < 1:
        raise ValueError(f"--steps and --threads must be >= 1, got {cfg.steps}, {cfg.threads}")
    model, metrics, seconds = train_encoder(cfg)
    path = save_encoder(model, a.out, cfg, metrics, seconds)
    print("held-out zero-shot top-1: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
          + f"  ({seconds:.0f} s)\nencoder spec: tspo-synth:{path}")
    return 0


def _validate(a) -> int:

    good, bad, missing = 0, 0, []
    for _, item in iter_manifest(a.manifest, a.root):
        if isinstance(item, ManifestError):
            bad += 1
            print(item, file=sys.stderr)
            continue
        good += 1
        if a.check_files:
            missing += [f"{item.id}: {src}" for src in dict.fromkeys(item.sources()) if not Path(src).is_file()]
    for m in missing:
        print(f"missing video: {m}", file=sys.stderr)
    print(f"{a.manifest}: {good} valid sample(s), {bad} bad line(s)"
          + (f", {len(missing)} missing video(s)" if a.check_files else ""))
    return 1 if bad or missing or not good else 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: return its code instead of exiting the caller
        return int(exc.code or 0)
    handler = {"render": _render, "needle": _needle, "world": _world, "filter": _filter, "qa": _qa, "validate": _validate,
               "encoder": _encoder}[args.cmd]
    try:
        return handler(args)
    except ValueError as exc:  # every input error of this package is a ValueError subclass
        print(f"tspo synth {args.cmd}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
