"""Synthetic needle data made on the spot, so ``tspo train fit`` runs offline on a fresh clone.

Rendered target clips (with their QA) and haystack videos from ``tspo.data_synth``, composed
into virtual needle videos (segment lists, no extra disk), split into a training set and a
held-out set whose target clips are never seen in training. Shaped like the paper's data: the
target material is 12-25 % of the timeline (16-32 of 128 candidates) and the evidence that
answers the question is a few seconds inside it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tspo.data_synth import NeedleConfig, compose_needles, render_dataset, write_manifest


@dataclass
class SynthConfig:
    """Where and how big. Seconds unless named otherwise; ``render_fps`` is the videos' frame rate."""

    out_dir: str | None = None  # None: <run folder>/data (the DataModule fills it in); a path to share data
    num_train: int = 256
    num_val: int = 64
    train_targets: int = 48
    val_targets: int = 16
    distractors: int = 8
    target_seconds: tuple[int, int] = (16, 40)
    distractor_seconds: tuple[int, int] = (90, 180)
    min_minutes: float = 2.5
    max_minutes: float = 5.0
    target_fraction: tuple[float, float] | None = (0.12, 0.25)
    repeats: tuple[int, int] = (1, 2)
    target_segment_seconds: tuple[float, float] = (10.0, 30.0)
    target_order: str = "shuffle"  # shuffle | ordered | contiguous (tspo.data_synth.TARGET_ORDERS)
    render_fps: int = 4
    size: int = 64
    seed: int = 0
    # The question world (``question_world()``): haystacks of confuser clips, every question kind.
    kinds: tuple[str, ...] | None = None          # question kinds to render (None: all of them)
    event_seconds: tuple[int, int] = (3, 6)
    confusers: int = 0                            # target-family clips rendered as haystack material
    confuser_seconds: tuple[int, int] = (60, 120)
    confuser_ratio: float = 0.0                   # share of each haystack cut from confusers

    def paths(self) -> tuple[Path, Path]:
        if self.out_dir is None:
            raise ValueError("SynthConfig.out_dir is not set; give data.synth.out_dir or train under a Trainer "
                             "(the run folder's data/ is used)")
        root = Path(self.out_dir)
        return root / "train" / "manifest.jsonl", root / "val" / "manifest.jsonl"


def ensure_synthetic(cfg: SynthConfig, progress: bool = True) -> tuple[Path, Path]:
    """Render + compose once into ``cfg.out_dir`` (reused when a run with the same config made it).

    Returns ``(train_manifest, val_manifest)``.
    """
    train_path, val_path = cfg.paths()
    root = Path(cfg.out_dir)
    stamp = root / "synth_config.json"
    wanted = json.dumps(asdict(cfg), sort_keys=True, default=list)
    if stamp.is_file() and stamp.read_text() == wanted and train_path.is_file() and val_path.is_file():
        return train_path, val_path
    root.mkdir(parents=True, exist_ok=True)
    common = {"fps": cfg.render_fps, "size": cfg.size, "progress": progress}
    # Distinct seeds per pool: held-out targets and haystack never share a clip with training.
    haystack = render_dataset(root / "haystack", cfg.distractors, seed=cfg.seed * 10 + 1, family="distractor",
                              min_seconds=cfg.distractor_seconds[0], max_seconds=cfg.distractor_seconds[1],
                              **common) if cfg.distractors > 0 else []
    needle_cfg = NeedleConfig(min_minutes=cfg.min_minutes, max_minutes=cfg.max_minutes, repeats=tuple(cfg.repeats),
                              target_fraction=None if cfg.target_fraction is None else tuple(cfg.target_fraction),
                              segment_seconds=(10.0, 60.0),
                              target_segment_seconds=tuple(cfg.target_segment_seconds), target_order=cfg.target_order,
                              confuser_ratio=cfg.confuser_ratio)
    target_kw = {"event_seconds": tuple(cfg.event_seconds), **({"kinds": tuple(cfg.kinds)} if cfg.kinds else {}),
                 **common}
    paths = {}
    for split, num_targets, num, seed, manifest in (
        ("train", cfg.train_targets, cfg.num_train, cfg.seed * 10 + 2, train_path),
        ("val", cfg.val_targets, cfg.num_val, cfg.seed * 10 + 3, val_path),
    ):
        targets = render_dataset(root / f"{split}_targets", num_targets, seed=seed, family="target",
                                 min_seconds=cfg.target_seconds[0], max_seconds=cfg.target_seconds[1], **target_kw)
        # Each split has its own confuser clips: held-out haystacks are unseen material too.
        confusers = render_dataset(root / f"{split}_confusers", cfg.confusers, seed=seed + 5, family="target",
                                   min_seconds=cfg.confuser_seconds[0], max_seconds=cfg.confuser_seconds[1],
                                   **target_kw) if cfg.confusers > 0 else []
        needle_cfg.id_prefix = f"needle-{split}"
        samples, _ = compose_needles(targets, [s.video for s in haystack], num, seed=seed, config=needle_cfg,
                                     progress=progress, confusers=confusers)
        manifest.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(manifest, samples)
        paths[split] = manifest
    stamp.write_text(wanted)
    return paths["train"], paths["val"]


# The question world's sizes as ``python -m benchmarks question`` reports them (benchmarks/RESULTS.md):
# the one owner, read by the benchmark and by ``tspo synth world``.
QUESTION_WORLD_NUM_TRAIN, QUESTION_WORLD_NUM_VAL = 384, 210
QUESTION_WORLD_SEED = 0   # the question world's default world seed (training clips, held-out clips, haystack)


def question_world(out_dir: str, num_train: int = QUESTION_WORLD_NUM_TRAIN, num_val: int = QUESTION_WORLD_NUM_VAL,
                   seed: int = QUESTION_WORLD_SEED, **overrides) -> SynthConfig:
    """The question world: 2.5-10 min needles whose haystack is 100 % confuser clips (same shapes,
    colours, backgrounds and motion, never what the question names), one contiguous target clip
    per needle (so "after" and "order" keep their meaning), every question kind. The one owner of its
    sizes and flags: ``python -m benchmarks question``, ``tspo synth world`` and ``tspo demo`` ask it;
    evaluate with the ``tspo-synth`` encoder."""
    cfg = {"out_dir": out_dir, "num_train": num_train, "num_val": num_val, "train_targets": max(8, num_train // 4),
           "val_targets": max(7, num_val // 2), "distractors": 0, "target_seconds": (16, 40),
           "min_minutes": 2.5, "max_minutes": 10.0, "target_fraction": None, "repeats": (1, 1),
           "target_order": "contiguous", "confusers": 24, "confuser_seconds": (60, 120), "confuser_ratio": 1.0,
           "seed": seed}
    cfg.update(overrides)
    return SynthConfig(**cfg)
