"""Lightning callbacks of a TSPO run: export the trained agent as a ``TSPOSelector`` directory."""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning as L

from tspo.selection.selector import TSPOSelector
from tspo.settings import SelectionSettings


class ExportSelector(L.Callback):
    """At the end of training, write ``dirpath`` = ``model.safetensors`` + ``config.json``.

    The directory loads with ``TSPOSelector.from_pretrained(dirpath)`` and ``tspo select``.
    ``dirpath`` defaults to ``<trainer.log_dir or default_root_dir>/selector``. ``num_frames``
    (k at inference) defaults to the training k. Only global rank 0 writes.

    Besides ``trained_with`` (method, oracle, steps, ...), the config records what
    :func:`tspo.selection.hub.model_card` prints: ``training_data`` (the training / held-out manifests, and
    the synthetic-data settings when the run made its own) and ``metrics`` (the latest held-out
    check: picks in target, accuracy, the step it ran at, and the training steps).
    """

    def __init__(self, dirpath: str | None = None, num_frames: int | None = None) -> None:
        self.dirpath = dirpath
        self.num_frames = num_frames
        self.exported: Path | None = None
        self.heldout: dict[str, Any] | None = None   # latest validation results (see on_validation_end)

    def target_dir(self, trainer: L.Trainer) -> Path:
        if self.dirpath is not None:
            return Path(self.dirpath)
        return Path(trainer.log_dir or trainer.default_root_dir) / "selector"

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:   # the sanity check runs an untrained agent on a batch or two
            return
        logged = trainer.callback_metrics
        if "val/accuracy" not in logged:
            return
        val_set = getattr(trainer.datamodule, "val_set", None)
        self.heldout = {
            "accuracy": float(logged["val/accuracy"]),
            "in_target": float(logged["val/in_target"]) if "val/in_target" in logged else None,
            "step": int(trainer.global_step),
            "samples": len(val_set) if val_set is not None else None,
        }

    def metrics(self, trainer: L.Trainer) -> dict[str, Any]:
        """Flat ``{name: value}`` rows for the model card's metrics table."""
        out: dict[str, Any] = {}
        if self.heldout is None:
            out["held-out check"] = f"not run: {self.why_no_heldout(trainer)}"
        else:
            h = self.heldout
            if h["in_target"] is not None:
                out["held-out picks in target"] = round(h["in_target"], 4)
            out["held-out accuracy (oracle)"] = round(h["accuracy"], 4)
            if h["samples"] is not None:
                out["held-out samples"] = h["samples"]
            out["held-out checked at step"] = h["step"]
        out["training steps"] = int(trainer.global_step)
        return out

    @staticmethod
    def why_no_heldout(trainer: L.Trainer) -> str:
        """The reason no held-out check ran, in the config's terms."""
        data = trainer.datamodule
        if getattr(data, "val_set", None) is None and getattr(data, "val_manifest", None) is None and (
            getattr(data, "synth", None) is None
        ):
            return "no held-out data (set data.val_manifest, or data.synth for synthetic held-out needles)"
        if trainer.limit_val_batches == 0:
            return "trainer.limit_val_batches is 0"
        interval = trainer.val_check_interval
        if isinstance(interval, int) and trainer.max_steps and interval > trainer.max_steps:
            return (f"trainer.val_check_interval={interval} batches is more than the run's "
                    f"trainer.max_steps={trainer.max_steps}; lower it")  # fmt: skip
        if trainer.global_step == 0:
            return "the run stopped before its first optimizer step"
        return "no validation ran before training ended (check trainer.val_check_interval / check_val_every_n_epoch)"

    @staticmethod
    def training_data(data: Any) -> tuple[list[str], dict[str, Any]]:
        """(model-card lines, structured record) of the manifests the run trained and checked on, as
        the datamodule's ``setup`` chose them (``data.used``)."""
        used = getattr(data, "used", None) or {}
        train, val, synth = used.get("train_manifest"), used.get("val_manifest"), used.get("synth")
        made = is_dataclass(synth)   # the datamodule rendered its own needles (tspo.training.synth)
        record: dict[str, Any] = {
            "train_manifest": os.path.abspath(train) if train is not None else None,
            "val_manifest": os.path.abspath(val) if val is not None else None,
            "synth": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(synth).items()} if made else None,
        }
        lines = []
        if made:
            lines.append(f"synthetic needles (tspo.training.synth: {synth.num_train} train / {synth.num_val} "
                         f"held-out, {synth.min_minutes}-{synth.max_minutes} min, seed {synth.seed})")
        if record["train_manifest"]:
            lines.append(f"train: {record['train_manifest']}")
        if record["val_manifest"]:
            lines.append(f"held-out: {record['val_manifest']}")
        return lines, record

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return

        data = trainer.datamodule
        agent = copy.deepcopy(pl_module.agent).float().cpu().eval()
        # what the agent was trained on: k and oracle frame size from the module, the grid from the data
        settings = SelectionSettings(num_frames=self.num_frames or int(pl_module.hparams.num_frames),
                                     fps=data.fps, max_candidates=data.max_candidates,
                                     frame_size=int(pl_module.hparams.frame_size))
        selector = TSPOSelector(encoder=pl_module.encoder, agent=agent, cache=False, settings=settings)
        lines, record = self.training_data(data)
        extra = {"trained_with": {"method": "tspo", "oracle": str(pl_module.hparams.oracle),
                                  "steps": int(trainer.global_step), "group_size": int(pl_module.hparams.group_size),
                                  "train_num_frames": int(pl_module.hparams.num_frames), "data": record},
                 "training_data": lines or None, "metrics": self.metrics(trainer)}
        self.exported = selector.save_pretrained(self.target_dir(trainer), extra_config=extra)
        print(f"tspo: exported the trained selector to {self.exported}")
