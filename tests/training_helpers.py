"""Shared pieces of the training tests: one small synthetic needle set, trainers, recorders."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from tspo.training import SynthConfig, TSPODataModule


def small_synth(root: Path) -> SynthConfig:
    """Rendered needles shaped like the paper's (target 12-25 % of 128 candidates), small enough
    to render in a few seconds. Same config -> ``ensure_synthetic`` reuses what is on disk."""
    return SynthConfig(out_dir=str(root / "synth"), num_train=64, num_val=48, train_targets=12, val_targets=8,
                       distractors=4, target_seconds=(16, 40), min_minutes=2.5, max_minutes=4.0, seed=0)


def small_datamodule(root: Path, **kw) -> TSPODataModule:
    kw.setdefault("val_batch_size", 48)
    return TSPODataModule(synth=small_synth(root), feature_cache=str(root / "features"), progress=False, **kw)


def trainer(max_steps: int, **kw) -> L.Trainer:
    kw.setdefault("logger", False)
    kw.setdefault("enable_checkpointing", False)
    kw.setdefault("limit_val_batches", 0)
    return L.Trainer(max_steps=max_steps, accelerator="cpu", devices=kw.pop("devices", 1),
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **kw)


class MetricRecorder(L.Callback):
    """Every training batch's logged metrics, as floats, in order."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train/", "perf/"))}
        row["step"] = trainer.global_step
        self.rows.append(row)


class SaveRankAgent(L.Callback):
    """Each rank writes its agent weights to ``dirpath/rank{r}.pt`` at the end (DDP test)."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = dirpath

    def on_train_end(self, trainer, pl_module) -> None:
        state = {k: v.detach().cpu().clone() for k, v in pl_module.agent.state_dict().items()}
        torch.save({"state": state, "batches_seen": pl_module.batches_seen, "world": trainer.world_size},
                   Path(self.dirpath) / f"rank{trainer.global_rank}.pt")
