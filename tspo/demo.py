"""``tspo demo --out DIR``: the whole system offline, in a few minutes on a laptop CPU.

1. render synthetic target clips (with QA) and haystack videos, and compose long *needle* videos
   from them (virtual: segment lists, no extra disk) — a training set and a held-out set whose
   target clips never appear in training;
2. cache candidate features with the ``tiny-random`` encoder;
3. train the temporal agent with TSPO (GRPO) against the :class:`~tspo.rewards.SimulatedOracle`,
   through the Lightning module and data module of ``tspo train``;
4. evaluate TSPO vs uniform vs CLIP top-k vs bin-max vs AKS on the held-out videos;
5. write the report folder: ``eval.json`` (the ``tspo eval`` shape), ``training_curves.png``,
   ``eval_summary.png``, ``selection_*.png``, the trained ``selector/``, ``REPORT.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tspo.agents import METHODS
from tspo.settings import DEFAULT_MAX_CANDIDATES, DEFAULT_NUM_FRAMES

NO_WEIGHTS_NOTE = """\
This demo runs WITHOUT pretrained weights. The frame/text encoder is `tiny-random`: a small
CLIP-shaped network whose weights are random (fixed seed), so its image and text features carry no
meaning. The "video LLM" is a SimulatedOracle that answers right exactly when the selected frames
cover the moment that answers the question (else it guesses). What that means for the numbers:
CLIP top-k, bin-max and AKS rank frames by similarity between random image and random text
features, so they are no better than chance at finding the target; whatever TSPO gains over them
it learned from the oracle's reward alone. The accuracies are the simulated oracle's, not a real
model's. With `--encoder ViT-L-14:openai` and a real oracle (`tspo train` with the `hf` or `openai`
oracle, `tspo eval --oracle hf:MODEL`) it is the same pipeline at full size."""


@dataclass
class DemoConfig:
    """Sizes of the demo run. Needles as in the training issue: 16-32 of 128 candidates are target."""

    out_dir: str = "demo_out"
    encoder: str = "tiny-random"
    steps: int = 3000
    num_frames: int = DEFAULT_NUM_FRAMES
    group_size: int = 8
    lr: float = 5e-4
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    num_train: int = 128
    num_val: int = 48
    train_targets: int = 32
    val_targets: int = 12
    distractors: int = 6
    methods: tuple[str, ...] = METHODS
    seed: int = 0
    num_plots: int = 2
    progress: bool = True
    synth_overrides: dict[str, Any] = field(default_factory=dict)


def _synth_config(cfg: DemoConfig):
    from tspo.training.synth import SynthConfig

    return SynthConfig(out_dir=str(Path(cfg.out_dir) / "data"), num_train=cfg.num_train, num_val=cfg.num_val,
                       train_targets=cfg.train_targets, val_targets=cfg.val_targets, distractors=cfg.distractors,
                       seed=cfg.seed, **cfg.synth_overrides)


def train(cfg: DemoConfig, train_manifest: Path, val_manifest: Path) -> Path:
    """TSPO training through the Lightning module; returns the exported selector directory."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from tspo.training.callbacks import ExportSelector
    from tspo.training.datamodule import TSPODataModule
    from tspo.training.module import TSPOModule

    out = Path(cfg.out_dir)
    L.seed_everything(cfg.seed, verbose=False)
    model = TSPOModule(encoder=cfg.encoder, num_frames=cfg.num_frames, group_size=cfg.group_size, lr=cfg.lr,
                       oracle="simulated", seed=cfg.seed)
    data = TSPODataModule(train_manifest=str(train_manifest), val_manifest=str(val_manifest), encoder=cfg.encoder,
                          max_candidates=cfg.max_candidates, feature_cache=str(out / "cache"), seed=cfg.seed,
                          progress=cfg.progress)
    export = ExportSelector(dirpath=str(out / "selector"))
    trainer = L.Trainer(max_steps=cfg.steps, accelerator="cpu", devices=1, logger=CSVLogger(str(out), name="logs"),
                        callbacks=[export], enable_checkpointing=False, log_every_n_steps=max(1, min(10, cfg.steps // 10)),
                        limit_val_batches=0, num_sanity_val_steps=0, enable_progress_bar=cfg.progress,
                        enable_model_summary=False)
    trainer.fit(model, datamodule=data)
    return out / "selector"


def eval_command(cfg: DemoConfig, val_manifest: Path, out_json: str = "eval_again.json") -> str:
    """The ``tspo eval`` command line that reproduces the demo's table from its manifest."""
    out = Path(cfg.out_dir)
    args = ["tspo", "eval", "--manifest", str(val_manifest), "--selector", str(out / "selector"),
            "--methods", ",".join(cfg.methods), "--oracle", "simulated", "--seed", str(cfg.seed), "-k", str(cfg.num_frames),
            "--out", str(out / out_json)]
    return shlex.join(args)


def plot_examples(cfg: DemoConfig, selector, samples, result: dict[str, Any]) -> list[Path]:
    """Selection plots (TSPO and uniform) of the first held-out samples, with thumbnails."""
    from tspo.plots import plot_selection

    paths = []
    for sample in samples[: cfg.num_plots]:
        for method in ("tspo", "uniform"):
            sel = selector.select(sample.video, sample.question, cfg.num_frames, method=method, return_frames=True,
                                  frame_size=64)
            title = (f"{method} on held-out {sample.id} ({sample.duration_s / 60:.1f} min): "
                     f"{sample.question[:60]}")
            path = Path(cfg.out_dir) / f"selection_{sample.id}_{method}.png"
            paths.append(plot_selection(sel, path, target_spans_s=sample.target_spans_s, title=title,
                                        evidence_spans_s=sample.evidence_spans_s))
    return paths


def verdict(result: dict[str, Any]) -> str:
    """One line comparing TSPO with uniform against the demo's goals (>= 0.8 in target, >= +0.15 accuracy)."""
    methods = result["methods"]
    if "tspo" not in methods or "uniform" not in methods:
        return ""
    t, u = methods["tspo"], methods["uniform"]
    if t["accuracy"] is None or u["accuracy"] is None or t["target_fraction"] is None:
        return ""
    gain = t["accuracy"] - u["accuracy"]
    ok = t["target_fraction"] >= 0.8 and gain >= 0.15
    return (f"TSPO puts {t['target_fraction']:.0%} of its picks inside the target (goal >= 80%) and answers "
            f"{t['accuracy']:.0%} vs uniform's {u['accuracy']:.0%} ({gain:+.0%}, goal >= +15 points): "
            f"{'goals met' if ok else 'goals NOT met'}.")


def write_report(cfg: DemoConfig, result: dict[str, Any], table: str, command: str, seconds: dict[str, float]) -> Path:
    lines = ["# tspo demo report", "", NO_WEIGHTS_NOTE, "", "## Held-out evaluation", "", verdict(result), "",
             "```", table, "```", "",
             "Reproduce this table from the held-out manifest:", "", "```", command, "```", "",
             "## Files", "", "- `eval.json` — the table as `tspo eval --out` writes it",
             "- `training_curves.png` — reward, R_A, R_T, τ, entropy per step (from `logs/`)",
             "- `eval_summary.png` — accuracy and picks inside the target per method",
             "- `selection_*.png` — agent score over time, picks, target (light) and evidence (dark) spans",
             "- `selector/` — the trained selector (`TSPOSelector.from_pretrained`, `tspo select --selector`)",
             "- `data/` — rendered clips and the train / held-out needle manifests", "",
             "## Run", "", "```json", json.dumps({"config": asdict(cfg), "seconds": seconds}, indent=2, default=list),
             "```", ""]
    path = Path(cfg.out_dir) / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run all five steps; returns the eval result dict (written to ``out_dir/eval.json``) plus
    ``stage_seconds`` (wall time of synth, train, eval, plots)."""
    from tspo.cache import FeatureCache
    from tspo.data_synth.manifest import load_manifest
    from tspo.evaluate import evaluate_samples, format_table
    from tspo.plots import plot_eval_summary, plot_training_curves
    from tspo.rewards import build_oracle
    from tspo.selector import TSPOSelector
    from tspo.training.synth import ensure_synthetic

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(NO_WEIGHTS_NOTE + "\n", flush=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    train_manifest, val_manifest = ensure_synthetic(_synth_config(cfg), progress=cfg.progress)
    seconds["synth"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    selector_dir = train(cfg, train_manifest, val_manifest)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    selector = TSPOSelector.from_pretrained(selector_dir, cache=FeatureCache(out / "cache"))
    samples = load_manifest(val_manifest)
    oracle = build_oracle("simulated", seed=cfg.seed)
    result = evaluate_samples(samples, cfg.methods, oracle, cfg.num_frames, selector, progress=cfg.progress)
    command = eval_command(cfg, val_manifest)
    result["config"] = {"manifest": str(val_manifest), "benchmark": None, "methods": list(cfg.methods),
                        "selector": str(selector_dir), "encoder": cfg.encoder, "oracle": "simulated", "seed": cfg.seed,
                        **selector.settings.override(num_frames=cfg.num_frames).to_config(), "reproduce": command}
    seconds["eval"] = time.perf_counter() - t0
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")

    t0 = time.perf_counter()
    plot_training_curves(out / "logs", out / "training_curves.png")
    plot_eval_summary(result, out / "eval_summary.png",
                      title=f"held-out needles ({len(samples)}), k={cfg.num_frames}, {cfg.encoder} encoder, "
                            "simulated oracle")
    plot_examples(cfg, selector, samples, result)
    seconds["plots"] = time.perf_counter() - t0

    table = format_table(result)
    print("\n" + table + "\n\n" + verdict(result))
    report = write_report(cfg, result, table, command, seconds)
    result["stage_seconds"] = seconds  # returned only; eval.json keeps the `tspo eval` shape
    print(f"\nreport: {report}  (eval.json, plots, selector/ beside it)")
    print(f"reproduce the table: {command}")
    return result


def _parser() -> argparse.ArgumentParser:
    d = DemoConfig()
    p = argparse.ArgumentParser(prog="tspo demo", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  tspo demo --out demo_out")
    p.add_argument("--out", default=d.out_dir, help="report folder (default %(default)s)")
    p.add_argument("--encoder", default=d.encoder, help="encoder spec (default %(default)s: offline, random weights)")
    p.add_argument("--steps", type=int, default=d.steps, help="GRPO steps (default %(default)s)")
    p.add_argument("-k", "--num-frames", type=int, default=d.num_frames, help="frames per selection")
    p.add_argument("--num-train", type=int, default=d.num_train, help="training needle videos")
    p.add_argument("--num-val", type=int, default=d.num_val, help="held-out needle videos")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds) that checks the pipeline, not learning")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def quick_config(out_dir: str, seed: int = 0) -> DemoConfig:
    """A seconds-long run: every step of the pipeline, too short to learn anything."""
    return DemoConfig(out_dir=out_dir, steps=8, num_train=6, num_val=3, train_targets=3, val_targets=2,
                      distractors=2, group_size=4, seed=seed, num_plots=1, progress=False,
                      synth_overrides={"target_seconds": (16, 20), "distractor_seconds": (40, 60),
                                       "min_minutes": 1.0, "max_minutes": 1.5})


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        cfg = quick_config(args.out, args.seed)
    else:
        cfg = DemoConfig(out_dir=args.out, encoder=args.encoder, steps=args.steps, num_frames=args.num_frames,
                         num_train=args.num_train, num_val=args.num_val, seed=args.seed, progress=not args.no_progress)
    from tspo.encoders import EncoderWeightsError

    try:
        run_demo(cfg)
    except (ValueError, EncoderWeightsError) as exc:
        print(f"tspo demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
