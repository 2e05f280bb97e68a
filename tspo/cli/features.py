"""``tspo features``: extract every video's candidate features of a manifest into the feature cache.

Each video is decoded and encoded once across the whole job (decode workers per rank, ranks over
GPUs and nodes; engine: :mod:`tspo.features.extract`), into the cache layout ``tspo train``, ``tspo eval``
and ``tspo select`` read. Videos already cached are skipped, so a killed run resumes; a video that
cannot be read (or whose encoder call fails) is reported with its reason and skipped; the others
are written, and the exit code is 1. Processes: ``--devices N`` (and ``--num-nodes M``) are
launched by Lightning Fabric; under ``torchrun`` or SLURM the launcher's processes are used as they are.
"""

from __future__ import annotations

# Lazy loads, on purpose: the modules that bring torch, open_clip or Lightning are imported inside
# the command's functions, so `--help` and argument errors answer before they load
# (tests/test_cli_behaviour.py checks it). Everything else is imported here.
import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tspo.manifest import load_manifest
from tspo.settings import DEFAULT_ENCODER, DEFAULT_FPS, DEFAULT_MAX_CANDIDATES, check_fps


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tspo features", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  tspo features data/train.jsonl --feature-cache runs/exp1/feature_cache --encoder ViT-L-14:openai\n"
               "  tspo features data/train.jsonl --devices 8 --num-workers 12 --batch-frames 256   # one node, 8 GPUs\n"
               "  torchrun --nnodes 4 --nproc-per-node 8 ... -m tspo features data/train.jsonl --devices 8 --num-nodes 4\n"
               "Give the same --fps / --max-candidates / --encoder as the run that reads the features "
               "(tspo train: data.fps, data.max_candidates, data.encoder).\n"
               "exit codes: 0 done, 1 some videos failed (listed with their reasons; the rest are written), "
               "2 bad arguments.")
    p.add_argument("manifest", help="JSON Lines manifest (schema: docs/INTERFACES.md, Manifest)")
    p.add_argument("--feature-cache", metavar="DIR", help="feature cache (default $TSPO_CACHE/features; a training "
                   "run's is RUN/feature_cache)")
    p.add_argument("--encoder", default=None, help=f"encoder spec (default {DEFAULT_ENCODER})")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"candidate frames per second (default {DEFAULT_FPS:g})")
    p.add_argument("--max-candidates", type=int, default=DEFAULT_MAX_CANDIDATES,
                   help=f"cap on the candidates per video; 0 for none (default {DEFAULT_MAX_CANDIDATES}, as tspo train)")
    p.add_argument("--devices", type=int, default=1, help="processes (GPUs) per node (default 1)")
    p.add_argument("--num-nodes", type=int, default=1, help="nodes (default 1; a shared filesystem holds the cache)")
    p.add_argument("--accelerator", default="auto", choices=("auto", "cpu", "gpu", "cuda"),
                   help="where the encoder runs (default auto: a GPU when there is one)")
    p.add_argument("--num-workers", type=int, default=None,
                   help="decode processes per rank; 0 decodes in the main process (default: cores per rank, 1..8)")
    p.add_argument("--batch-frames", type=int, default=None, help="frames per encoder call (default 128)")
    p.add_argument("--json", metavar="FILE", help="write the summary (done, cached, failed with reasons, per rank) here")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _check(args: argparse.Namespace) -> None:

    check_fps(args.fps, "--fps")
    for name in ("devices", "num_nodes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.max_candidates is not None and args.max_candidates < 0:
        raise ValueError(f"--max-candidates must be >= 0 (0: no cap), got {args.max_candidates}")
    if args.num_workers is not None and args.num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {args.num_workers}")
    if args.batch_frames is not None and args.batch_frames < 1:
        raise ValueError(f"--batch-frames must be >= 1, got {args.batch_frames}")
    if not Path(args.manifest).is_file():
        raise ValueError(f"manifest {args.manifest!r} does not exist; write one with tspo synth or by hand")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check(args)
    except ValueError as exc:
        print(f"tspo features: error: {exc}", file=sys.stderr)
        return 2
    from datetime import timedelta

    from lightning.fabric import Fabric
    from lightning.fabric.strategies import DDPStrategy

    accelerator = "cuda" if args.accelerator == "gpu" else args.accelerator
    multi = args.devices * args.num_nodes > 1
    # A long job waits at the final gather for the slowest rank: far past torch's default 30 min.
    fabric = Fabric(accelerator=accelerator, devices=args.devices, num_nodes=args.num_nodes,
                    strategy=DDPStrategy(timeout=timedelta(days=1)) if multi else "auto")
    fabric.launch()
    try:
        return _extract_and_report(args, fabric)
    finally:
        # an undestroyed gloo group can abort the interpreter at exit after the work is done: its worker
        # threads still hold tensors while Python finalizes ("terminate called without an active exception",
        # exit -6; seen once in CI; pytorch/pytorch#179291, #190489), so close it while Python is alive
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _extract_and_report(args: argparse.Namespace, fabric: Any) -> int:
    """The extraction on this rank and, on rank 0, the summary (and ``--json``) -> the exit status."""
    from tspo.features.cache import FeatureCache
    from tspo.features.encoder_cache import cached_encoder
    from tspo.features.encoders import EncoderWeightsError
    from tspo.features.extract import DEFAULT_BATCH_FRAMES, Ranks, default_num_workers, extract_features

    try:
        samples = load_manifest(args.manifest)
        cache = FeatureCache(args.feature_cache)
        encoder = cached_encoder(args.encoder or DEFAULT_ENCODER, cache.root, fabric.device)
        workers = default_num_workers(args.devices) if args.num_workers is None else args.num_workers
        summary = extract_features([s.video for s in samples], encoder, cache, args.fps, args.max_candidates or None,
                                   workers, args.batch_frames or DEFAULT_BATCH_FRAMES, Ranks.current(),
                                   progress=not args.quiet)
    except (ValueError, EncoderWeightsError) as exc:
        print(f"tspo features: error: {exc}", file=sys.stderr)
        return 2
    if fabric.global_rank == 0:
        print(summary.text())
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(summary.to_json() | {"config": {
                "manifest": args.manifest, "feature_cache": str(cache.root), "encoder": encoder.spec,
                "fps": args.fps, "max_candidates": args.max_candidates or None, "devices": args.devices,
                "num_nodes": args.num_nodes, "num_workers": workers,
                "batch_frames": args.batch_frames or DEFAULT_BATCH_FRAMES}}, indent=2) + "\n")
            print(f"wrote {args.json}")
    return 1 if summary.failed else 0   # 1: some videos have no features (listed above, with reasons)


if __name__ == "__main__":
    raise SystemExit(main())
